"""What a sign-in protocol must offer, so SAML could stand beside OpenID Connect.

A :class:`Provider` sends the browser away (:meth:`begin`, returning the URL and what to
keep in the session until it comes back) and turns the answer into a checked
:class:`Identity` (:meth:`complete`). Everything after that - provisioning, role mapping,
signing re-authentication - works on identities and does not know the protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from etmf.errors import EtmfError
from etmf.sso.config import ProviderConfig


class SsoRefused(EtmfError):
    """The identity provider's answer was not accepted: nobody is signed in, nothing signed."""

    status = 401
    code = "sso_refused"
    title = "Sign-in through your organisation was not accepted"


@dataclass(frozen=True)
class Identity:
    """A person as the provider vouched for them, after every check passed."""

    provider: str
    subject: str
    email: str
    name: str
    groups: tuple[str, ...]
    #: When the person last entered their credentials at the provider (UTC), if told.
    auth_time: datetime | None
    #: Protocol-specific evidence kept for sign-out (the ID token, for OIDC).
    session_hint: str = ""


class Provider(Protocol):
    config: ProviderConfig

    def begin(self, redirect_uri: str, *, reauthenticate: bool = False,
              login_hint: str | None = None) -> tuple[str, dict[str, Any]]:
        """The URL to send the browser to, and what to keep until it comes back.

        ``reauthenticate``: the person must enter their credentials again now, whatever
        session they have at the provider (for a signature)."""
        ...

    def complete(self, params: Mapping[str, str], pending: Mapping[str, Any],
                 redirect_uri: str, now: datetime) -> Identity:
        """Check the provider's answer against ``pending``; raise :class:`SsoRefused`."""
        ...

    def logout_url(self, session_hint: str, return_to: str) -> str | None:
        """Where to send the browser to end the provider session too, if it can."""
        ...


@dataclass(frozen=True)
class ExternalAuthentication:
    """Proof that the signer just entered their credentials at an identity provider:
    used in place of the password at a signature (SIG-4)."""

    provider: str
    subject: str
    auth_time: datetime
    #: The value recorded in /Prop_AuthType, e.g. "OIDC".
    method: str = "OIDC"
