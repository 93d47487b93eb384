"""`etmf validate` as a validation lead runs it: the IQ/OQ report, its verdict and the PQ
template. Each run selects a few fast tests (never the whole suite, which would recurse)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from docx import Document

from etmf.cli import main

from .conftest import SECRET

CANONICAL = str(Path(__file__).resolve().parents[2] / "unit" / "audit" / "test_canonical.py")

BROKEN = '''
import pytest

@pytest.mark.req("AUD-6")
def test_replay_rebuilds_the_tables():
    assert {"documents": 3} == {"documents": 2}, "replay lost a document"

@pytest.mark.req("AUD-6")
@pytest.mark.req("AUD-66")
def test_with_a_typo_in_its_marker():
    pass
'''


def _pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True,
                          text=True, check=True).stdout


@pytest.mark.req("FR-VAL-1")
def test_validate_writes_a_passing_report_with_the_traced_requirement(validate, tmp_path):
    out = tmp_path / "report"
    result = validate("--output", str(out), "--requirement", "AUD-3", "--tests", CANONICAL,
                      "--workers", "0")
    assert result.exit_code == 0, result.output
    assert "Validation passed: 1 requirements: 1 passed, 0 failed" in result.stdout
    assert "partial run" in result.stdout

    text = _pdf_text(out / "validation-report.pdf")
    assert "Computer system validation report (IQ/OQ)" in text
    assert "AUD-3" in text and "PASS" in text
    assert "test_canonical_encoding_is_byte_for_byte_the_documented_one" in text
    assert "Installation checks (etmf check)" in text and "Audit checkpoint key id" in text
    assert "Signing CA SHA-256 fingerprint" in text
    assert "Prepared by" in text and "Approved by" in text
    html = (out / "validation-report.html").read_text(encoding="utf-8")
    assert '<th scope="row" class="pass">AUD-3</th>' in html
    assert "Flask-Security-Too" in html or "flask-security-too" in html.lower()
    for rendition in (text, html):
        assert SECRET not in rendition
        assert "********" in rendition

    evidence = json.loads((out / "oq-evidence.json").read_text(encoding="utf-8"))
    [test] = evidence["tests"]
    assert test["requirements"] == ["AUD-3"] and test["outcome"] == "passed"
    assert test["start"].startswith("20") and test["start"] <= test["stop"]
    assert Document(str(out / "pq-template.docx")).tables


@pytest.mark.req("FR-VAL-1")
@pytest.mark.req("FR-VAL-2")
def test_a_failing_test_fails_validation_and_names_its_requirement(validate, tmp_path):
    broken = tmp_path / "test_broken_behaviour.py"
    broken.write_text(BROKEN, encoding="utf-8")
    out = tmp_path / "report"
    result = validate("--output", str(out), "-r", "AUD-6", "--tests", str(broken),
                      "--workers", "0")
    assert result.exit_code == 1, result.output
    assert "test_replay_rebuilds_the_tables  AUD-6: AssertionError: replay lost a document" \
        in result.stdout
    assert "requirement AUD-66 is not in the catalogue" in result.stdout
    assert "Validation FAILED: 1 requirements: 0 passed, 1 failed" in result.stdout

    text = _pdf_text(out / "validation-report.pdf")
    assert "FAIL" in text and "AUD-6" in text and "replay lost a document" in text
    html = (out / "validation-report.html").read_text(encoding="utf-8")
    assert '<th scope="row" class="fail">AUD-6</th>' in html
    assert html.count('class="deviation"') >= 2


def test_validation_without_the_test_suite_says_so_and_writes_no_report(tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(main, ["validate", "--output", str(out), "--suite",
                                       str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "The OQ test suite was not found" in result.output
    assert "pass --suite DIR" in result.output
    assert not out.exists()


def test_an_unknown_requirement_is_refused_before_anything_runs(tmp_path):
    result = CliRunner().invoke(main, ["validate", "--output", str(tmp_path / "r"),
                                       "-r", "AUD-3", "-r", "AUD-99"])
    assert result.exit_code == 2
    assert "AUD-99 not in the requirement catalogue" in result.output
    assert not (tmp_path / "r").exists()


@pytest.mark.req("FR-VAL-3")
def test_pq_template_is_an_editable_docx_with_the_scenarios_table(tmp_path):
    path = tmp_path / "pq" / "pq-protocol.docx"
    result = CliRunner().invoke(main, ["validate", "--pq-template", str(path)])
    assert result.exit_code == 0, result.output
    doc = Document(str(path))
    scenarios = doc.tables[0]
    assert [c.text for c in scenarios.rows[0].cells] == [
        "ID", "Scenario", "Expected result", "Actual result", "Pass/fail", "Performed by",
        "Date"]
    assert scenarios.rows[1].cells[0].text == "PQ-01"
    assert len(scenarios.rows) >= 11
    assert "Performance qualification (PQ) protocol" in doc.paragraphs[0].text


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "-1"], "Invalid value for '--workers'"),
    (["--tests", "tests/no_such_file.py"], "does not exist"),
    (["--only-marked", "--output"], "requires an argument"),
])
def test_wrong_options_are_refused_with_a_clear_message(tmp_path, args, message):
    result = CliRunner().invoke(main, ["validate", *args])
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.req("FR-VAL-1")
@pytest.mark.req("FR-VAL-4")
def test_on_the_demo_instance_the_report_is_written_filed_and_sent_for_signature(tmp_path):
    import os

    from sqlalchemy import select

    from etmf.cli import app_context
    from etmf.documents.models import Document
    from etmf.workflows.models import SignatureRequest

    env = {k: v for k, v in os.environ.items() if not k.startswith("ETMF_")}
    instance = str(tmp_path / "demo")
    runner = CliRunner()
    demo = runner.invoke(main, ["demo", "--instance", instance, "--no-serve"], env=env)
    assert demo.exit_code == 0, demo.output
    out = tmp_path / "report"
    result = runner.invoke(main, [
        "validate", "--instance", instance, "--output", str(out), "-r", "AUD-3",
        "--tests", CANONICAL, "--workers", "0", "--file-into", "ONC-301",
        "--filed-by", "manager@etmf-demo.org",
        "--signer", "manager@etmf-demo.org=approval"], env=env)
    assert result.exit_code == 0, result.output
    assert "Filed into ONC-301 as document" in result.output
    assert "(artifact 10.04.03, In QC); signature request" in result.output
    text = _pdf_text(out / "validation-report.pdf")
    assert "AUD-3" in text and "PASS" in text

    with app_context(instance) as app:
        from etmf.bootstrap import services

        with services(app).db.read_session() as s:
            doc = s.scalar(select(Document).where(Document.artifact_number == "10.04.03"))
            request = s.scalar(select(SignatureRequest).where(
                SignatureRequest.document_id == doc.id))
            assert doc.status == "in_qc" and doc.title.endswith("(PASS)")
            assert [x.printed_name for x in request.signers] == ["Morgan Manager"]


def test_filing_options_go_together(tmp_path):
    result = CliRunner().invoke(main, ["validate", "--output", str(tmp_path / "r"),
                                       "--file-into", "ONC-301"])
    assert result.exit_code == 2
    assert "--file-into and --filed-by go together" in result.output


@pytest.mark.req("FR-VAL-1")
def test_a_scratch_copy_without_audit_triggers_fails_validation_naming_aud_2(validate,
                                                                             tmp_path):
    """Acceptance: break one requirement's behaviour in a scratch copy of the code (the
    append-only triggers are never installed) and validation fails, naming AUD-2."""
    import shutil

    root = Path(__file__).resolve().parents[3]
    copy = tmp_path / "scratch"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for name in ("etmf", "storage", "ctms", "tests", "templates"):
        if (root / name).is_dir():
            shutil.copytree(root / name, copy / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py"):
        if (root / name).is_file():
            shutil.copy2(root / name, copy / name)
    triggers = copy / "etmf" / "audit" / "triggers.py"
    source = triggers.read_text(encoding="utf-8")
    signature = "def install(conn: Connection) -> None:\n"
    assert signature in source
    triggers.write_text(source.replace(
        signature, signature + "    return  # broken on purpose: no append-only triggers\n"),
        encoding="utf-8")

    out = tmp_path / "report"
    result = validate("--output", str(out), "--suite", str(copy / "tests"), "-r", "AUD-2",
                      "--tests", str(copy / "tests" / "integration" / "test_audit_trail.py"),
                      "--workers", "0")
    assert result.exit_code == 1, result.output
    assert "test_triggers_refuse_changing_or_deleting_events" in result.stdout
    assert "AUD-2: " in result.stdout
    assert "Validation FAILED: 1 requirements: 0 passed, 1 failed" in result.stdout
    html = (out / "validation-report.html").read_text(encoding="utf-8")
    assert '<th scope="row" class="fail">AUD-2</th>' in html
    text = _pdf_text(out / "validation-report.pdf")
    assert "AUD-2" in text and "FAIL" in text
