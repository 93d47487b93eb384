"""The canonical event encoding is fixed: a change would make every stored hash unverifiable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from etmf.audit.store import canonical_json, event_canonical, hash_text

EVENT = dict(
    seq=7, stream_type="document", stream_id="12", stream_version=3,
    type="document.metadata_changed", payload='{"changes":{"title":["Protcol","Protocol"]}}',
    study_id=1, actor_id=4, actor_name="Dr Zoë Ünal", reason="typo",
    occurred_at=datetime(2026, 11, 26, 9, 30, 0, 120, tzinfo=UTC), request_id="r1",
    client_addr="127.0.0.1", prev_hash="ab" * 32,
)

EXPECTED = (
    '{"actor_id":4,"actor_name":"Dr Zoë Ünal","client_addr":"127.0.0.1",'
    '"occurred_at":"2026-11-26T09:30:00.000120Z",'
    '"payload":"{\\"changes\\":{\\"title\\":[\\"Protcol\\",\\"Protocol\\"]}}",'
    '"prev_hash":"' + "ab" * 32 + '","reason":"typo","request_id":"r1","seq":7,'
    '"stream_id":"12","stream_type":"document","stream_version":3,"study_id":1,'
    '"type":"document.metadata_changed","v":1}'
)


@pytest.mark.req("AUD-3")
def test_canonical_encoding_is_byte_for_byte_the_documented_one():
    assert event_canonical(**EVENT) == EXPECTED
    assert hash_text(EXPECTED) == hash_text(event_canonical(**EVENT))


def test_time_zone_of_the_input_does_not_change_the_encoding():
    from datetime import timedelta, timezone

    cet = EVENT["occurred_at"].astimezone(timezone(timedelta(hours=1)))
    assert event_canonical(**{**EVENT, "occurred_at": cet}) == EXPECTED


def test_payloads_are_sorted_and_floats_refused():
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'
    with pytest.raises(TypeError, match="floats are not allowed"):
        canonical_json({"amount": 1.5})
