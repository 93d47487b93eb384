"""OpenID Connect (authorization code flow with PKCE, state and nonce) with Authlib.

Authlib builds the authorization request and redeems the code; the ID token is checked
with joserfc (Authlib's JOSE library): signature against the provider's published keys,
``iss``, ``aud``, ``exp``, ``iat``, ``nonce``, and ``auth_time`` when re-authenticating.
Time comes from our clock, passed in.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from hmac import compare_digest
from typing import Any

import requests
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet

from etmf.sso.config import ProviderConfig
from etmf.sso.provider import Identity, SsoRefused

TIMEOUT = 10
ALGORITHMS = ("RS256", "PS256", "ES256")


class OidcProvider:
    """One OpenID provider: discovery and keys fetched on first use and cached."""

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._lock = threading.Lock()

    # ---- discovery and keys ------------------------------------------------------------
    def metadata(self) -> dict[str, Any]:
        with self._lock:
            if self._metadata is None:
                url = self.config.issuer + "/.well-known/openid-configuration"
                try:
                    response = requests.get(url, timeout=TIMEOUT)
                    response.raise_for_status()
                    data = response.json()
                except (requests.RequestException, ValueError) as exc:
                    raise SsoRefused(f"The identity provider {self.config.label} cannot be "
                                     f"reached ({exc.__class__.__name__}). Try again later or "
                                     "ask your administrator.") from None
                if data.get("issuer") != self.config.issuer:
                    raise SsoRefused(f"The identity provider at {self.config.issuer} calls "
                                     f"itself {data.get('issuer')!r}; it is not trusted.")
                self._metadata = data
            return self._metadata

    def keys(self, *, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            response = requests.get(self.metadata()["jwks_uri"], timeout=TIMEOUT)
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        return self._keys

    def _client(self, redirect_uri: str) -> OAuth2Session:
        return OAuth2Session(self.config.client_id, self.config.client_secret,
                             scope=" ".join(self.config.scopes), redirect_uri=redirect_uri,
                             code_challenge_method="S256")

    # ---- Provider protocol -------------------------------------------------------------
    def begin(self, redirect_uri: str, *, reauthenticate: bool = False,
              login_hint: str | None = None) -> tuple[str, dict[str, Any]]:
        pending = {"state": secrets.token_urlsafe(24), "nonce": secrets.token_urlsafe(24),
                   "code_verifier": secrets.token_urlsafe(48), "reauth": reauthenticate}
        extra: dict[str, Any] = {"nonce": pending["nonce"]}
        if reauthenticate:
            extra.update(prompt="login", max_age=0)
        if login_hint:
            extra["login_hint"] = login_hint
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                self.metadata()["authorization_endpoint"], state=pending["state"],
                code_verifier=pending["code_verifier"], **extra)
        return url, pending

    def complete(self, params: Mapping[str, str], pending: Mapping[str, Any],
                 redirect_uri: str, now: datetime) -> Identity:
        label = self.config.label
        if params.get("error"):
            raise SsoRefused(f"{label} did not sign you in: "
                             f"{params.get('error_description') or params['error']}.")
        state = params.get("state", "")
        if not pending or not compare_digest(state, str(pending.get("state", ""))):
            raise SsoRefused("This sign-in answer does not belong to this browser session "
                             "(state mismatch). Start again from the sign-in page.")
        if "iss" in params and params["iss"] != self.config.issuer:
            raise SsoRefused(f"The answer came from {params['iss']!r}, not from {label}.")
        code = params.get("code")
        if not code:
            raise SsoRefused(f"{label} sent no authorization code. Start again.")
        try:
            with self._client(redirect_uri) as client:
                token = client.fetch_token(self.metadata()["token_endpoint"], code=code,
                                           code_verifier=pending["code_verifier"],
                                           grant_type="authorization_code", timeout=TIMEOUT)
        except Exception as exc:  # Authlib raises OAuthError or requests errors
            raise SsoRefused(f"{label} did not accept the authorization code: {exc}.") from None
        id_token = token.get("id_token")
        if not id_token:
            raise SsoRefused(f"{label} returned no ID token.")
        claims = self.validate_id_token(id_token, nonce=str(pending["nonce"]), now=now,
                                        require_auth_time=bool(pending.get("reauth")))
        return identity_from_claims(self.config, claims, id_token)

    def validate_id_token(self, id_token: str, *, nonce: str, now: datetime,
                          require_auth_time: bool = False,
                          keys: KeySet | None = None) -> dict[str, Any]:
        keys = keys or self.keys()
        try:
            try:
                token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
            except JoseError:
                if keys is not self._keys:
                    raise
                token = jwt.decode(id_token, self.keys(refresh=True),  # keys rotated?
                                   algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise SsoRefused("The ID token's signature does not verify against "
                             f"{self.config.label}'s keys ({exc}).") from None
        return check_claims(self.config, token.claims, nonce=nonce, now=now,
                            require_auth_time=require_auth_time)

    def logout_url(self, session_hint: str, return_to: str) -> str | None:
        endpoint = self.metadata().get("end_session_endpoint")
        if not endpoint:
            return None
        from urllib.parse import urlencode

        query = {"post_logout_redirect_uri": return_to, "client_id": self.config.client_id}
        if session_hint:
            query["id_token_hint"] = session_hint
        return f"{endpoint}?{urlencode(query)}"


def check_claims(config: ProviderConfig, claims: Mapping[str, Any], *, nonce: str,
                 now: datetime, require_auth_time: bool = False) -> dict[str, Any]:
    """OpenID Connect Core §3.1.3.7: issuer, audience (and azp), expiry, issue time, nonce."""
    label = config.label
    stamp = int(now.timestamp())
    registry = jwt.JWTClaimsRegistry(
        now=stamp, leeway=config.leeway_seconds,
        iss={"essential": True, "value": config.issuer},
        sub={"essential": True}, exp={"essential": True}, iat={"essential": True},
        aud={"essential": True, "value": config.client_id},
        nonce={"essential": True, "value": nonce})
    try:
        registry.validate(dict(claims))
    except JoseError as exc:
        name = "exp" if isinstance(exc, ExpiredTokenError) else getattr(exc, "claim", "")
        reason = {
            "iss": f"it was issued by {claims.get('iss')!r}, not by {config.issuer}",
            "aud": f"it is meant for {claims.get('aud')!r}, not for this server",
            "exp": "it has expired",
            "iat": "it was issued in the future",
            "nonce": "its nonce does not match this sign-in (a replayed or foreign token)",
        }.get(name, str(exc))
        raise SsoRefused(f"The ID token from {label} was refused: {reason}.") from None
    aud = claims.get("aud")
    if isinstance(aud, list) and len(aud) > 1 and claims.get("azp") != config.client_id:
        raise SsoRefused(f"The ID token from {label} was refused: it names several "
                         "audiences and this server is not its authorized party.")
    if require_auth_time and not isinstance(claims.get("auth_time"), int):
        raise SsoRefused(f"{label} did not say when you entered your password (auth_time), "
                         "so the signature cannot be applied.")
    return dict(claims)


def identity_from_claims(config: ProviderConfig, claims: Mapping[str, Any],
                         id_token: str = "") -> Identity:
    email = str(claims.get("email") or "").strip().lower()
    if not email or "@" not in email:
        raise SsoRefused(f"{config.label} did not share your e-mail address; this server "
                         "needs it (ask for the 'email' scope).")
    if claims.get("email_verified") is False:
        raise SsoRefused(f"{config.label} says your e-mail address is not verified.")
    groups = claims.get(config.groups_claim) or ()
    if isinstance(groups, str):
        groups = (groups,)
    auth_time = claims.get("auth_time")
    return Identity(
        provider=config.name, subject=str(claims["sub"]), email=email,
        name=str(claims.get("name") or email).strip(),
        groups=tuple(str(g) for g in groups),
        auth_time=(datetime.fromtimestamp(auth_time, UTC)
                   if isinstance(auth_time, int) else None),
        session_hint=id_token)
