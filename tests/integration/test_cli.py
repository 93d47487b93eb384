"""The `etmf` command line, as an administrator uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from etmf.cli import main

ETMF = str(Path(sys.executable).with_name("etmf"))
ADMIN = ["--admin-email", "root@example.org", "--admin-name", "Rita Root",
         "--admin-password", "Tr1al-Master-File-Admin"]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETMF_")}
    env["ETMF_INSTANCE_PATH"] = str(tmp_path / "inst")
    return env


@pytest.mark.parametrize("command", [
    [], ["init"], ["serve"], ["demo"], ["check"], ["db", "upgrade"],
    ["db", "grant-app-role"], ["audit", "verify"], ["audit", "checkpoint"], ["audit", "prove"],
])
def test_every_command_explains_itself(command):
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output
    assert len(result.output.splitlines()) > 3


def test_a_wrong_setting_stops_start_up_with_one_sentence(tmp_path):
    env = _env(tmp_path) | {"ETMF_DATABASE_URL": "nonsense://"}
    result = subprocess.run([ETMF, "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.strip() == (
        "Error: ETMF_DATABASE_URL 'nonsense://' is not a supported database URL; use "
        "sqlite:///path/to/file.db or postgresql+psycopg://user@host:5432/dbname."
    )


def test_an_unknown_setting_is_named(tmp_path):
    env = _env(tmp_path) | {"ETMF_STORAGE_BAKEND": "s3"}
    result = subprocess.run([ETMF, "check"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "ETMF_STORAGE_BAKEND is not a setting of this server" in result.stderr


def test_init_then_check_passes_and_fails_readably_when_storage_or_database_break(tmp_path):
    runner = CliRunner()
    env = _env(tmp_path)
    init = runner.invoke(main, ["init", *ADMIN], env=env)
    assert init.exit_code == 0, init.output
    assert "Created administrator root@example.org." in init.output

    ok = runner.invoke(main, ["check"], env=env)
    assert ok.exit_code == 0, ok.output
    assert "All 6 checks passed." in ok.output

    blobs = tmp_path / "inst" / "blobs"
    blobs.rename(tmp_path / "inst" / "blobs-moved")
    blobs.write_text("a file where the storage folder should be")
    broken = runner.invoke(main, ["check"], env=env)
    assert broken.exit_code == 1
    storage_line = next(line for line in broken.output.splitlines() if "storage" in line)
    assert storage_line.startswith("FAIL")
    assert "1 of 6 checks failed: storage." in broken.output

    blobs.unlink()
    (tmp_path / "inst" / "blobs-moved").rename(blobs)
    (tmp_path / "inst" / "etmf.db").unlink()
    missing = runner.invoke(main, ["check"], env=env)
    assert missing.exit_code == 1
    assert "does not exist; run `etmf init`" in missing.output
    assert not (tmp_path / "inst" / "etmf.db").exists()  # check never creates a database


def test_init_refuses_a_weak_administrator_password(tmp_path):
    result = CliRunner().invoke(main, ["init", "--admin-email", "a@example.org",
                                       "--admin-name", "A", "--admin-password", "password"],
                                env=_env(tmp_path))
    assert result.exit_code != 0
    assert "The password is not acceptable" in result.output


@pytest.mark.req("AUD-6")
def test_demo_instance_passes_check_and_its_log_rebuilds_its_tables(tmp_path):
    runner = CliRunner()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETMF_")}
    instance = str(tmp_path / "demo")
    demo = runner.invoke(main, ["demo", "--instance", instance, "--no-serve"], env=env)
    assert demo.exit_code == 0, demo.output
    assert "Every account's password:" in demo.output
    for role in ("Administrator", "Study manager", "TMF specialist", "QC reviewer",
                 "Investigator", "Inspector"):
        assert role in demo.output
    check = runner.invoke(main, ["check", "--instance", instance], env=env)
    assert check.exit_code == 0, check.output
    verify = runner.invoke(main, ["audit", "verify", "--instance", instance], env=env)
    assert verify.exit_code == 0, verify.output
    assert "Replay: the log rebuilds the live tables exactly." in verify.output


def test_demo_refuses_to_wipe_a_folder_that_is_not_a_demo(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("do not delete")
    result = CliRunner().invoke(main, ["demo", "--instance", str(precious), "--no-serve"])
    assert result.exit_code != 0
    assert "is not a demo instance" in result.output
    assert (precious / "keep.txt").read_text() == "do not delete"


def test_check_names_the_migrations_a_database_still_lacks(tmp_path):
    from sqlalchemy import create_engine

    from etmf.migrate import downgrade, pending_revisions

    runner = CliRunner()
    env = _env(tmp_path)
    assert runner.invoke(main, ["init", *ADMIN], env=env).exit_code == 0
    engine = create_engine(f"sqlite:///{tmp_path / 'inst' / 'etmf.db'}")
    assert pending_revisions(engine) == []
    downgrade(engine, "0022@-1")  # take one area's branch back by one step
    assert pending_revisions(engine) == ["0022"]
    engine.dispose()
    result = runner.invoke(main, ["check"], env=env)
    assert result.exit_code != 0
    assert "not applied: 0022" in result.output and "etmf db upgrade" in result.output
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(main, ["check"], env=env).exit_code == 0


def test_check_says_when_postgresql_keeps_no_planner_statistics(app):
    """`etmf check` notes an autovacuum that is off (a planner without statistics made
    searches at 250,000 documents ten times slower) without failing the installation."""
    from sqlalchemy import text

    from etmf.bootstrap import services
    from etmf.checks import installation_checks

    svc = services(app)
    if svc.db.dialect != "postgresql":
        pytest.skip("autovacuum is a PostgreSQL setting; this runs in the PostgreSQL pass")
    with svc.db.engine.connect() as conn:
        autovacuum = conn.scalar(text("SHOW autovacuum"))
    database = next(r for r in installation_checks(svc) if r.name == "database")
    assert database.ok, database.detail
    assert ("autovacuum is off" in database.detail) == (autovacuum != "on")


def test_a_served_worker_warms_its_search_index_after_the_fork(app):
    """`etmf serve`'s post-fork hook loads the search index's caches in the background."""
    import threading

    from etmf.bootstrap import services
    from etmf.cli import _after_fork

    svc = services(app)
    calls = []
    original = svc.search.warm
    svc.search.warm = lambda: calls.append(threading.current_thread().name) or original()

    _after_fork(app)
    for thread in threading.enumerate():
        if thread.name == "etmf-search-warm":
            thread.join(30)

    assert calls == ["etmf-search-warm"]


def test_serve_hides_the_loaded_heap_from_the_collector_before_the_workers_fork():
    """`etmf serve` freezes what start-up loaded (collections in a worker skip it) and
    collects the young generation less often than CPython's default."""
    import gc

    from etmf.cli import GC_YOUNG_THRESHOLD, _freeze_heap

    before = gc.get_threshold()
    try:
        gc.unfreeze()
        _freeze_heap()
        assert gc.get_freeze_count() > 10_000  # at least the imported modules' objects
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, before[1], before[2])
        assert before[0] < GC_YOUNG_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
