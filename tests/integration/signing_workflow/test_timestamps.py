"""With a time-stamping authority configured, signatures reach the configured PAdES level;
if it cannot be reached, nothing is signed and the signer is told (SIG-9)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from tests.conftest import FROZEN_AT, PASSWORD
from tests.fixtures.ports import free_port
from tests.integration.signing.helpers import Tsa, running_tsa

from .conftest import events_of, login_as, post_sign, version_count


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsa]:
    with running_tsa(tmp_path_factory.mktemp("tsa"),
                     at=FROZEN_AT + timedelta(seconds=1)) as service:
        yield service


@pytest.fixture
def settings_overrides(request, tmp_path_factory) -> dict[str, object]:  # type: ignore[no-untyped-def]
    if "unreachable_tsa" in request.node.name:
        return {"tsa_url": f"http://127.0.0.1:{free_port()}/tsa", "signature_level": "B-T"}
    tsa: Tsa = request.getfixturevalue("tsa")
    root = tmp_path_factory.mktemp("tsa-root") / "root.pem"
    root.write_bytes(tsa.root.public_bytes(serialization.Encoding.PEM))
    return {"tsa_url": tsa.url, "tsa_root_cert": str(root), "signature_level": "B-LTA"}


@pytest.mark.req("SIG-9")
def test_with_a_tsa_the_signature_reaches_b_lta_and_validates(app, svc, team, approved_doc,
                                                              sequential_request):
    response = post_sign(login_as(app, team.investigator), sequential_request,
                         password=PASSWORD)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    body = login_as(app, team.manager).get(
        f"/api/v1/documents/{approved_doc}/versions/2/signatures").get_json()
    (sig,) = body["signatures"]
    assert (sig["status"], sig["level"]) == ("VALID", "PAdES B-LTA")
    assert sig["timestamp_time"] == "2026-11-26T09:30:01+00:00"


@pytest.mark.req("SIG-9")
def test_an_unreachable_tsa_signs_nothing_and_says_so(app, svc, team, approved_doc,
                                                      sequential_request):
    before = version_count(svc, approved_doc)
    response = post_sign(login_as(app, team.investigator), sequential_request,
                         password=PASSWORD)
    assert response.status_code == 503
    assert "the document was not signed" in response.get_data(as_text=True)
    assert version_count(svc, approved_doc) == before
    assert events_of(svc, "signature.applied") == []
