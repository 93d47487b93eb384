"""With a time-stamping authority configured, each audit checkpoint carries an RFC 3161
token over its signature, and `etmf audit verify` checks it (AUD-3: the checkpoint outside the table)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select

from etmf.audit import timestamps
from etmf.audit.checkpoint import SignedTreeHead
from etmf.audit.models import Checkpoint
from etmf.audit.service import create_checkpoint, verify_checkpoints
from tests.conftest import FROZEN_AT
from tests.fixtures.ports import free_port
from tests.integration.signing.helpers import Tsa, running_tsa


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tsa]:
    with running_tsa(tmp_path_factory.mktemp("tsa"),
                     at=FROZEN_AT + timedelta(seconds=1)) as service:
        yield service


@pytest.fixture
def settings_overrides(request, tmp_path_factory) -> dict[str, object]:  # type: ignore[no-untyped-def]
    if "unreachable" in request.node.name:
        return {"tsa_url": f"http://127.0.0.1:{free_port()}/tsa"}
    tsa: Tsa = request.getfixturevalue("tsa")
    root = tmp_path_factory.mktemp("tsa-root") / "root.pem"
    root.write_bytes(tsa.root.public_bytes(serialization.Encoding.PEM))
    return {"tsa_url": tsa.url, "tsa_root_cert": str(root)}


def _stored(svc) -> list[SignedTreeHead]:  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return [SignedTreeHead.from_json(t) for t in
                s.scalars(select(Checkpoint.signed_json).order_by(Checkpoint.id))]


@pytest.mark.req("AUD-3")
def test_checkpoint_carries_a_token_that_verify_checks(svc, world, clock):
    with svc.db.read_session() as s:
        first = create_checkpoint(s, svc.settings, clock.now())
    assert first.timestamp_token is not None
    assert timestamps.check(svc.settings, first) is None
    world.user("monitor")  # the log grows: a second checkpoint with its own token
    clock.advance(timedelta(hours=1))
    with svc.db.read_session() as s:
        second = create_checkpoint(s, svc.settings, clock.now())
        assert verify_checkpoints(s, svc.settings) == (2, [])
    assert [c.timestamp_token is not None for c in _stored(svc)] == [True, True]

    # A token taken from another checkpoint does not cover this one's signature.
    swapped = dataclasses.replace(second, timestamp_token=first.timestamp_token)
    assert timestamps.check(svc.settings, swapped) == (
        "its time-stamp token does not cover this checkpoint's signature")
    garbage = dataclasses.replace(second, timestamp_token="bm90IGEgdG9rZW4=")
    assert "cannot be read or checked" in (timestamps.check(svc.settings, garbage) or "")


@pytest.mark.req("AUD-3")
def test_an_unreachable_tsa_fails_the_checkpoint_and_stores_nothing(svc, clock):
    with svc.db.read_session() as s, pytest.raises(timestamps.TimestampFailed,
                                                   match="gave no token"):
        create_checkpoint(s, svc.settings, clock.now())
    assert _stored(svc) == []
    assert not list((svc.settings.instance_path / "checkpoints").glob("sth-*.json"))
