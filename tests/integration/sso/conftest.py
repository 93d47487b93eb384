"""A real OpenID provider per test module, and a server configured to trust it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest

from tests.fixtures.oidc_provider import RunningProvider, sign_in_at_provider, start_provider


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningProvider]:
    with start_provider(tmp_path_factory.mktemp("oidc")) as running:
        yield running


@pytest.fixture
def settings_overrides(idp: RunningProvider) -> dict[str, object]:
    return {"oidc_providers_file": str(idp.providers_file)}


@pytest.fixture(autouse=True)
def _provider_time(clock) -> None:  # type: ignore[no-untyped-def]
    # The provider stamps tokens with the machine's time; our clock must agree with it.
    clock.set(datetime.now(UTC).replace(microsecond=0))


def local(url: str) -> str:
    """Our callback URL as a path for the Flask test client."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def sso_sign_in(client, idp: RunningProvider, who: str):  # type: ignore[no-untyped-def]
    """Sign in through the provider as the test user whose subject starts with ``who``."""
    user = idp.user(who)
    start = client.get("/sso/test/login")
    assert start.status_code == 302 and start.location.startswith(idp.issuer)
    back = sign_in_at_provider(start.location, idp.issuer, str(user["sub"]),
                               str(user["password"]))
    return client.get(local(back))
