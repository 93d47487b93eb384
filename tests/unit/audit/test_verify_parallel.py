"""verify_chain split into ranges across helper processes reaches a single walk's verdict.

The log is cut into ranges of ``CHUNK`` events; a helper process is handed ranges 0 and 1
before this process takes range 2, so "the second range" below is always checked in a helper
first. Every report is compared with the one-process walk over the same database: same
verdict, same first bad event, same message, same counts and head.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from etmf.audit import chainscan, triggers, verify
from etmf.audit.models import Event
from etmf.audit.store import Actor, Context, projection, unit_of_work
from etmf.cli import main

CHUNK = 10


@projection("parallel.tick")
def _tick(session, event) -> None:
    """A test-only event type with no read table."""


@pytest.fixture
def log(world, svc):  # type: ignore[no-untyped-def]
    """At least five ranges of events, some with awkward strings."""
    with unit_of_work(svc.db, svc.clock, Actor(7, "Dr Zoë Ünal"),
                      Context(request_id="r-1", client_addr="10.0.0.1")) as uow:
        for n in range(5 * CHUNK):
            uow.emit("parallel", f"s{n % 3}", "parallel.tick",
                     {"n": n, "text": 'quote " backslash \\ new\nline 北京'},
                     study_id=None if n % 2 else 1, reason=None if n % 4 else "why")
        uow.commit()
    with svc.db.read_session() as session:
        top = session.scalar(select(Event.seq).order_by(Event.seq.desc()).limit(1))
    assert top > 4 * CHUNK
    return top


def _verify(svc, workers: int, progress=None):  # type: ignore[no-untyped-def]
    with svc.db.read_session() as session:
        return verify.verify_chain(session, progress, workers=workers, min_parallel=1,
                                   chunk=CHUNK)


@pytest.fixture
def scanned_here(monkeypatch) -> list[int]:
    """Indices of the ranges this process scanned itself."""
    seen: list[int] = []
    original = verify._ParallelRun._scan_here

    def spy(self, index: int) -> None:  # type: ignore[no-untyped-def]
        seen.append(index)
        original(self, index)

    monkeypatch.setattr(verify._ParallelRun, "_scan_here", spy)
    return seen


def _superuser_edit(svc, statement: str) -> None:  # type: ignore[no-untyped-def]
    with svc.db.engine.begin() as conn:
        triggers.uninstall(conn)
        conn.exec_driver_sql(statement)
        triggers.install(conn)


def test_an_intact_log_verifies_in_helper_processes_like_in_one_walk(
        svc, log, scanned_here, monkeypatch):
    def refuse(row):  # type: ignore[no-untyped-def]
        raise AssertionError(f"fast path missed event {row[0]}")

    monkeypatch.setattr(verify, "_canonical_generic", refuse)
    seen: list[int] = []
    parallel = _verify(svc, 2, seen.append)
    assert parallel.ok, parallel.problem
    assert parallel == _verify(svc, 1)
    assert parallel.checked == parallel.head_seq == log
    assert sum(seen) == log
    assert 0 not in scanned_here and 1 not in scanned_here  # the helper's results counted
    assert scanned_here  # and this process did its share


@pytest.mark.req("AUD-3")
@pytest.mark.parametrize("offset", [0, 3, CHUNK - 1], ids=["first", "inner", "last"])
def test_an_altered_event_in_the_second_range_is_named(svc, log, offset):
    target = CHUNK + 1 + offset
    _superuser_edit(svc, "UPDATE audit_events SET payload = replace(payload, 'quote', "
                         f"'quote!') WHERE seq = {target}")
    parallel = _verify(svc, 2)
    assert parallel.first_bad_seq == target
    assert "altered" in parallel.problem
    assert parallel.checked == target - 1
    assert parallel == _verify(svc, 1)


@pytest.mark.req("AUD-3")
def test_the_first_of_two_altered_events_in_different_ranges_is_named(svc, log):
    _superuser_edit(svc, "UPDATE audit_events SET reason = 'other' "
                         f"WHERE seq IN ({CHUNK + 4}, {3 * CHUNK + 2})")
    parallel = _verify(svc, 2)
    assert parallel.first_bad_seq == CHUNK + 4
    assert parallel == _verify(svc, 1)


@pytest.mark.req("AUD-3")
@pytest.mark.parametrize("deleted", [
    (CHUNK,),                                   # last event of the first range
    (CHUNK + 1,),                               # first event of the second range
    tuple(range(2 * CHUNK + 1, 3 * CHUNK + 1)),  # the whole third range
    (2 * CHUNK, 2 * CHUNK + 1),                 # both sides of a boundary
], ids=["end-of-range", "start-of-range", "whole-range", "across-boundary"])
def test_a_gap_at_a_range_boundary_is_named(svc, log, deleted):
    _superuser_edit(svc, "DELETE FROM audit_events WHERE seq IN "
                         f"({', '.join(map(str, deleted))})")
    parallel = _verify(svc, 2)
    missing, found = deleted[0], deleted[-1] + 1
    assert parallel.first_bad_seq == found
    assert parallel.problem == f"event {missing} is missing (next found is {found})"
    assert parallel.checked == missing - 1
    assert parallel == _verify(svc, 1)


@pytest.mark.req("AUD-3")
def test_a_broken_link_at_the_start_of_a_range_is_named(svc, log):
    target = 2 * CHUNK + 1
    _superuser_edit(svc, f"UPDATE audit_events SET prev_hash = '{'0' * 64}' "
                         f"WHERE seq = {target}")
    parallel = _verify(svc, 2)
    assert parallel.first_bad_seq == target
    assert "does not link" in parallel.problem
    assert parallel == _verify(svc, 1)


@pytest.mark.req("AUD-3")
def test_two_events_swapped_across_a_boundary_are_named(svc, log):
    a, b = CHUNK, CHUNK + 1
    _superuser_edit(svc, f"UPDATE audit_events SET seq = -1 WHERE seq = {a}")
    _superuser_edit(svc, f"UPDATE audit_events SET seq = {a} WHERE seq = {b}")
    _superuser_edit(svc, f"UPDATE audit_events SET seq = {b} WHERE seq = -1")
    parallel = _verify(svc, 2)
    assert parallel.first_bad_seq == a
    assert parallel == _verify(svc, 1)


def test_a_helper_that_dies_leaves_its_ranges_to_this_process(svc, log, scanned_here,
                                                             monkeypatch):
    monkeypatch.setattr(verify, "_BOOT", "import sys; sys.exit(3)")
    parallel = _verify(svc, 2)
    assert parallel.ok, parallel.problem
    assert parallel == _verify(svc, 1)
    assert sorted(scanned_here) == list(range(len(scanned_here)))
    assert 0 in scanned_here and 1 in scanned_here


def test_no_helper_process_at_all_still_verifies(svc, log, monkeypatch):
    monkeypatch.setattr(verify.sys, "executable", "/nonexistent/python")
    seen: list[int] = []
    parallel = _verify(svc, 2, seen.append)
    assert parallel.ok and parallel.checked == log == sum(seen)


def test_a_row_only_the_reference_encoder_accepts_is_judged_here(svc, log, scanned_here):
    if svc.db.dialect != "sqlite":
        pytest.skip("PostgreSQL keeps a timestamp, not its text: no other spelling exists")
    target = CHUNK + 5
    # The same instant in ISO form: the template refuses it, the reference encoder parses it.
    _superuser_edit(svc, "UPDATE audit_events SET occurred_at = replace(occurred_at, ' ', "
                         f"'T') WHERE seq = {target}")
    parallel = _verify(svc, 2)
    assert parallel.ok, parallel.problem
    assert parallel == _verify(svc, 1)
    assert 1 in scanned_here  # the helper's "suspect" range was re-judged here


@pytest.mark.req("AUD-3")
def test_a_timestamp_moved_to_the_same_date_bc_is_named(svc, log):
    if svc.db.dialect != "postgresql":
        pytest.skip("SQLite keeps the timestamp text; only PostgreSQL has eras")
    target = CHUNK + 2
    _superuser_edit(svc, "UPDATE audit_events SET occurred_at = (to_char(occurred_at AT TIME "
                         "ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || ' BC')::timestamp AT "
                         f"TIME ZONE 'UTC' WHERE seq = {target}")
    for workers in (1, 2):
        report = _verify(svc, workers)
        assert report.first_bad_seq == target
        assert "altered" in report.problem


@pytest.mark.req("FR-AUDIT-1")
def test_cli_verify_uses_the_helpers_and_names_the_event(svc, log, scanned_here,
                                                         monkeypatch):
    monkeypatch.setattr(verify, "PARALLEL_MIN_EVENTS", 1)
    monkeypatch.setattr(verify, "CHUNK_EVENTS", CHUNK)
    monkeypatch.setattr(verify, "default_workers", lambda: 2)
    runner = CliRunner()
    args = ["audit", "verify", "--no-replay", "--instance", str(svc.settings.instance_path)]
    env = {"ETMF_DATABASE_URL": svc.settings.database_url}
    good = runner.invoke(main, args, env=env)
    assert good.exit_code == 0, good.output
    assert f"Chain: intact, {log} events" in good.output
    assert 0 not in scanned_here and 1 not in scanned_here
    target = CHUNK + 3
    _superuser_edit(svc, f"UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = {target}")
    bad = runner.invoke(main, args, env=env)
    assert bad.exit_code == 1
    assert f"FAILED at event {target}: event {target} was altered" in bad.output


@pytest.mark.req("AUD-3")
def test_an_event_with_a_far_away_seq_is_named_without_cutting_a_range_per_gap(svc, log):
    far = 10**12
    columns = ", ".join(c for c in chainscan.COLUMNS if c not in ("seq", "stream_version",
                                                                   "hash"))
    _superuser_edit(svc, f"INSERT INTO audit_events (seq, stream_version, hash, {columns}) "
                         f"SELECT {far}, stream_version + 1000, '{'e' * 64}', "
                         f"{columns} FROM audit_events WHERE seq = {log}")
    parallel = _verify(svc, 2)
    assert parallel.first_bad_seq == far
    assert parallel.problem == f"event {log + 1} is missing (next found is {far})"
    assert parallel == _verify(svc, 1)
