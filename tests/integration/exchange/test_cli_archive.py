"""`etmf ems export|import` and `etmf archive create`, run as an administrator would."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import zipfile

import pytest

from etmf.exchange.archive import SUMS, read_sums
from etmf.studies.models import Study
from tests.integration.records.conftest import run_cli


@pytest.fixture
def study_with_documents(world):  # type: ignore[no-untyped-def]
    author = world.user("tmf_specialist", name="Ada Author")
    qc = world.user("qc_reviewer", name="Quentin QC")
    world.document(author, title="Protocol", state="approved", qc=qc)
    world.document(author, title="Site CV", artifact="05.02.04", level="site", site="101",
                   state="approved", qc=qc)
    return world


@pytest.mark.req("FR-EXCH-4")
def test_archive_locks_the_study_and_can_be_verified_without_the_server(
        svc, study_with_documents, tmp_path):
    target = tmp_path / "TST-001-archive.zip"
    result = run_cli(svc.settings, "archive", "create", "TST-001", str(target),
                     "--reason", "Trial closed")
    assert result.exit_code == 0, result.output
    assert "is locked" in result.output
    with svc.db.read_session() as s:
        assert s.get(Study, study_with_documents.study_id).locked_at is not None
    out = tmp_path / "unzipped"
    with zipfile.ZipFile(target) as zf:
        names = set(zf.namelist())
        for required in ("exchange.xml", "archive/audit-trail.csv", "archive/audit-trail.pdf",
                         "archive/signature-reports.json", "archive/checkpoint.json",
                         "archive/lock-event-proof.json", "archive/proofcheck.py",
                         "archive/README.txt", SUMS):
            assert required in names
        sums = read_sums(zf.read(SUMS))
        assert set(sums) == names - {SUMS}
        for name, digest in sums.items():
            assert hashlib.sha256(zf.read(name)).hexdigest() == digest, name
        zf.extractall(out)
    check = subprocess.run([sys.executable, str(out / "archive/proofcheck.py"),
                            str(out / "archive/lock-event-proof.json")],
                           capture_output=True, text=True, cwd=tmp_path, check=False)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.req("FR-EXCH-1")
@pytest.mark.req("FR-EXCH-2")
def test_ems_export_then_dry_run_and_import_on_the_console(svc, study_with_documents, tmp_path,
                                                           second_app):
    from etmf.bootstrap import services

    target = tmp_path / "export.zip"
    result = run_cli(svc.settings, "ems", "export", "TST-001", str(target), "--zone", "05")
    assert result.exit_code == 0, result.output
    assert "Exported 1 documents" in result.output
    other = services(second_app).settings
    dry = run_cli(other, "ems", "import", str(target), "--dry-run")
    assert "Unknown countries: DE" in dry.output and "Unknown sites: 101" in dry.output
    assert dry.exit_code == 0, dry.output  # they will be created in an empty instance
    done = run_cli(other, "ems", "import", str(target))
    assert "Imported 1 documents (1 versions)" in done.output, done.output
    again = run_cli(other, "ems", "import", str(target))
    assert "Imported 0 documents" in again.output
