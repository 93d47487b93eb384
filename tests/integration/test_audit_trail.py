"""The audit trail is complete, append-only and tamper-evident (AUD-1 … AUD-7)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from etmf.audit import triggers
from etmf.audit.models import Event
from etmf.audit.service import create_checkpoint, prove, verify_all
from etmf.audit.store import Actor, projection, unit_of_work
from etmf.audit.verify import verify_chain
from etmf.cli import main


@projection("load.tick")
def _load_tick(session, event) -> None:
    """A test-only event type with no read table, for the concurrency test."""


def _superuser_edit(svc, statements: list[str]) -> None:
    """What a database superuser can do: switch the triggers off, edit, switch them on."""
    with svc.db.engine.begin() as conn:
        triggers.uninstall(conn)
        for statement in statements:
            conn.exec_driver_sql(statement)
        triggers.install(conn)


def _report(svc):
    with svc.db.read_session() as session:
        return verify_all(session, svc.settings, replay=False)


@pytest.mark.req("AUD-2")
@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET actor_name = 'someone else' WHERE seq = 1",
    "DELETE FROM audit_events WHERE seq = 1",
    "DELETE FROM audit_events",
])
def test_triggers_refuse_changing_or_deleting_events(world, svc, statement):
    with pytest.raises(DatabaseError, match="append-only"), svc.db.engine.begin() as conn:
        conn.exec_driver_sql(statement)
    with svc.db.read_session() as session:
        assert session.get(Event, 1).actor_name == "test setup"


@pytest.mark.req("AUD-2")
def test_truncate_is_refused_on_postgresql(world, svc):
    if svc.db.dialect != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; DELETE without WHERE is covered above")
    with pytest.raises(DatabaseError, match="append-only"), svc.db.engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE audit_events")


@pytest.mark.req("AUD-2")
def test_application_role_has_no_update_or_delete_right(world, svc):
    if svc.db.dialect != "postgresql":
        pytest.skip("database roles exist on PostgreSQL only")
    from etmf.dbroles import grant_app_role

    grant_app_role(svc.db.engine, "etmf_app_test")
    for statement in ("UPDATE audit_events SET reason = 'x'", "DELETE FROM audit_events",
                      "TRUNCATE audit_events"):
        with pytest.raises(DatabaseError, match="permission denied"), \
                svc.db.engine.begin() as conn:
            conn.exec_driver_sql("SET ROLE etmf_app_test")
            conn.exec_driver_sql(statement)
    with svc.db.engine.begin() as conn:
        conn.exec_driver_sql("SET ROLE etmf_app_test")
        assert conn.scalar(text("SELECT count(*) FROM audit_events")) > 0


@pytest.mark.req("AUD-3")
def test_an_edited_payload_is_named_by_verify(world, svc):
    assert _report(svc).ok
    _superuser_edit(svc, ["UPDATE audit_events SET payload = replace(payload, 'Hospital 102', "
                          "'Hospital 999') WHERE type = 'site.added'"])
    with svc.db.read_session() as session:
        bad = session.scalar(select(Event.seq).where(Event.payload.contains("Hospital 999")))
    report = _report(svc)
    assert not report.ok
    assert report.chain.first_bad_seq == bad
    assert "altered" in report.chain.problem


@pytest.mark.req("AUD-3")
def test_deleting_the_newest_events_is_detected_against_the_external_checkpoint(world, svc):
    with svc.db.read_session() as session:
        sth = create_checkpoint(session, svc.settings, svc.clock.now())
        total = session.scalar(text("SELECT max(seq) FROM audit_events"))
    assert sth.tree_size == total
    # Remove the newest three events and every checkpoint row: the chain that is left is
    # internally consistent, only the checkpoint file outside the database can tell.
    _superuser_edit(svc, [f"DELETE FROM audit_events WHERE seq > {total - 3}",
                          "DELETE FROM audit_checkpoints"])
    report = _report(svc)
    assert report.chain.ok
    assert not report.ok
    assert any(f"{total} events" in p for p in report.checkpoint_problems)


@pytest.mark.req("AUD-3")
def test_swapping_two_events_is_detected(world, svc):
    _superuser_edit(svc, [
        "UPDATE audit_events SET seq = -1 WHERE seq = 2",
        "UPDATE audit_events SET seq = 2 WHERE seq = 3",
        "UPDATE audit_events SET seq = 3 WHERE seq = -1",
    ])
    report = _report(svc)
    assert not report.ok
    assert report.chain.first_bad_seq == 2


@pytest.mark.req("AUD-3")
def test_inclusion_proof_verifies_offline_and_fails_after_a_change(world, svc, tmp_path):
    with svc.db.read_session() as session:
        create_checkpoint(session, svc.settings, svc.clock.now())
        bundle = prove(session, svc.settings, 3)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(bundle))
    checker = Path(__file__).resolve().parents[2] / "etmf" / "audit" / "proofcheck.py"
    ok = subprocess.run([sys.executable, "-I", str(checker), str(good)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout
    assert "VERIFIED" in ok.stdout
    tampered = dict(bundle)
    tampered["event_canonical"] = bundle["event_canonical"].replace("test setup", "Mallory")
    assert tampered["event_canonical"] != bundle["event_canonical"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tampered))
    refused = subprocess.run([sys.executable, "-I", str(checker), str(bad)],
                             capture_output=True, text=True)
    assert refused.returncode == 1


@pytest.mark.req("AUD-6")
def test_replaying_the_log_rebuilds_the_live_tables(world, svc):
    specialist = world.user("tmf_specialist")
    qc = world.user("qc_reviewer")
    world.document(specialist, title="Protocol", state="approved", qc=qc)
    with svc.db.read_session() as session:
        report = verify_all(session, svc.settings, replay=True)
    assert report.replayed
    assert report.replay_differences == []


@pytest.mark.req("AUD-6")
def test_replay_notices_a_read_table_changed_without_an_event(world, svc):
    with svc.db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE sites SET institution = 'Quietly renamed' WHERE id = 1")
    with svc.db.read_session() as session:
        report = verify_all(session, svc.settings, replay=True)
    assert not report.ok
    assert any("sites" in d for d in report.replay_differences)


@pytest.mark.req("AUD-7")
def test_events_carry_utc_time_from_the_server_clock(world, svc, clock):
    clock.advance(timedelta(hours=5, minutes=7))
    from etmf.studies.services import add_site

    with unit_of_work(svc.db, clock, Actor(None, "tester")) as uow:
        add_site(uow, study_id=world.study_id, country_id=world.country_ids["FR"],
                 number="202", institution="Hospital 202")
        uow.commit()
    with svc.db.read_session() as session:
        last = session.scalars(select(Event).order_by(Event.seq.desc()).limit(1)).one()
    assert last.occurred_at == clock.now()
    assert last.occurred_at.utcoffset() == timedelta(0)


def test_concurrent_writers_make_one_gapless_chain(world, svc):
    """8 writers appending at once never fork the chain (PostgreSQL: 8 × 500 events)."""
    per_writer = 500 if svc.db.dialect == "postgresql" else 60
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(per_writer):
                with unit_of_work(svc.db, svc.clock, Actor(None, f"writer {n}")) as uow:
                    uow.emit("load", f"w{n}", "load.tick", {"i": i})
                    uow.commit()
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with svc.db.read_session() as session:
        report = verify_chain(session)
        per_stream = dict(session.execute(
            select(Event.stream_id, text("max(stream_version)")).where(
                Event.stream_type == "load").group_by(Event.stream_id)).all())
    assert report.ok, report.problem
    assert per_stream == {f"w{n}": per_writer for n in range(8)}


@pytest.mark.req("FR-AUDIT-1")
def test_cli_verify_names_the_first_bad_event(world, svc):
    runner = CliRunner()
    instance = str(svc.settings.instance_path)
    env = {"ETMF_DATABASE_URL": svc.settings.database_url}
    good = runner.invoke(main, ["audit", "verify", "--instance", instance], env=env)
    assert good.exit_code == 0, good.output
    assert "Replay: the log rebuilds the live tables exactly." in good.output
    _superuser_edit(svc, ["UPDATE audit_events SET actor_name = 'Mallory' WHERE seq = 4"])
    bad = runner.invoke(main, ["audit", "verify", "--instance", instance], env=env)
    assert bad.exit_code == 1
    assert "FAILED at event 4" in bad.output


@pytest.mark.req("FR-AUDIT-2")
def test_cli_prove_writes_a_bundle_that_verifies_offline(world, svc, tmp_path):
    runner = CliRunner()
    instance = str(svc.settings.instance_path)
    env = {"ETMF_DATABASE_URL": svc.settings.database_url}
    checkpoint = runner.invoke(main, ["audit", "checkpoint", "--instance", instance], env=env)
    assert checkpoint.exit_code == 0, checkpoint.output
    result = runner.invoke(main, ["audit", "prove", "3", "--instance", instance], env=env)
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "event-3.json"
    bundle.write_text(result.stdout, encoding="utf-8")
    assert json.loads(result.stdout)["event_canonical"]
    checker = Path(__file__).resolve().parents[2] / "etmf" / "audit" / "proofcheck.py"
    offline = subprocess.run([sys.executable, "-I", str(checker), str(bundle)],
                             capture_output=True, text=True, timeout=60)
    assert offline.returncode == 0, offline.stdout + offline.stderr
    assert "VERIFIED" in offline.stdout
