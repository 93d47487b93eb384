"""verify_chain's template encoder gives the documented canonical bytes, and stays as strict.

The fast path writes the canonical JSON with a template; rows whose fast hash does not match
are re-encoded with the JSON encoder before being judged. These tests make sure (1) genuine
events never need that fallback, whatever their strings hold, and (2) tampering with the
type or shape of a stored value is still named, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from etmf.audit import triggers, verify
from etmf.audit.models import Event
from etmf.audit.store import Actor, Context, projection, unit_of_work
from etmf.audit.verify import verify_chain

AWKWARD = ['quote " backslash \\ slash /', "new\nline\ttab\r", "control \x01\x1f",
           "Zoë Ünal 北京 😀", "", "null", "</script>"]


@projection("fastpath.tick")
def _tick(session, event) -> None:
    """A test-only event type with no read table."""


def _append_awkward(svc) -> None:
    for n, value in enumerate(AWKWARD):
        actor = Actor(None if n % 2 else n, f"Actor {value}")
        context = Context(request_id=value or None, client_addr=None if n % 3 else value)
        with unit_of_work(svc.db, svc.clock, actor, context) as uow:
            uow.emit("fastpath", value or "empty", "fastpath.tick",
                     {"value": value, "n": n, "nested": {"list": [value, None, True]}},
                     study_id=None if n % 2 else 1, reason=value or None)
            uow.commit()


def _superuser_edit(svc, statement: str) -> None:
    with svc.db.engine.begin() as conn:
        triggers.uninstall(conn)
        conn.exec_driver_sql(statement)
        triggers.install(conn)


def _seq(svc, **where) -> int:
    with svc.db.read_session() as session:
        return session.scalar(select(Event.seq).filter_by(**where).order_by(Event.seq))


def test_genuine_events_never_need_the_generic_encoder(world, svc, monkeypatch):
    _append_awkward(svc)

    def refuse(row):
        raise AssertionError(f"fast path missed event {row[0]}")

    monkeypatch.setattr(verify, "_canonical_generic", refuse)
    with svc.db.read_session() as session:
        report = verify_chain(session)
        total = session.scalar(select(Event.seq).order_by(Event.seq.desc()).limit(1))
    assert report.ok, report.problem
    assert report.checked == total


def test_progress_counts_every_event(world, svc):
    _append_awkward(svc)
    seen: list[int] = []
    with svc.db.read_session() as session:
        report = verify_chain(session, seen.append)
    assert sum(seen) == report.checked


@pytest.mark.req("AUD-3")
@pytest.mark.parametrize("change", [
    "actor_id = NULL",
    "reason = ''",
    "study_id = 2",
    "request_id = NULL",
    "actor_name = actor_name || ' '",
    "stream_type = 'fastpatH'",
])
def test_changed_values_are_named(world, svc, change):
    _append_awkward(svc)
    target = _seq(svc, stream_type="fastpath", stream_id="</script>")
    _superuser_edit(svc, f"UPDATE audit_events SET {change} WHERE seq = {target}")
    with svc.db.read_session() as session:
        report = verify_chain(session)
    assert report.first_bad_seq == target
    assert "altered" in report.problem


@pytest.mark.req("AUD-3")
def test_a_shifted_timestamp_is_named(world, svc):
    _append_awkward(svc)
    target = _seq(svc, stream_type="fastpath")
    if svc.db.dialect == "sqlite":
        change = "occurred_at = replace(occurred_at, '.', ',')"
    else:
        change = "occurred_at = occurred_at + interval '1 microsecond'"
    _superuser_edit(svc, f"UPDATE audit_events SET {change} WHERE seq = {target}")
    with svc.db.read_session() as session:
        report = verify_chain(session)
    assert report.first_bad_seq == target


@pytest.mark.req("AUD-3")
@pytest.mark.parametrize("change", [
    "stream_version = stream_version + 0.5",   # a REAL where an integer was
    "stream_version = CAST(stream_version AS REAL) + 0.0",  # 1.0 stays 1 (affinity)
    "actor_name = CAST(actor_name AS BLOB)",   # bytes where text was
])
def test_values_of_another_type_are_named_on_sqlite(world, svc, change):
    if svc.db.dialect != "sqlite":
        pytest.skip("SQLite stores any type in any column; PostgreSQL refuses these")
    _append_awkward(svc)
    target = _seq(svc, stream_type="fastpath", stream_id="</script>")
    _superuser_edit(svc, f"UPDATE audit_events SET {change} WHERE seq = {target}")
    with svc.db.read_session() as session:
        report = verify_chain(session)
    if "+ 0.0" in change:
        # SQLite turns a whole REAL back into INTEGER in an INTEGER column: no change.
        assert report.ok, report.problem
    else:
        assert report.first_bad_seq == target
        assert "altered" in report.problem
