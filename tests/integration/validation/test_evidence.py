"""How test results become evidence: requirement status, deviations, installed-file hashes."""

from __future__ import annotations

import base64
import hashlib
from importlib import metadata

from etmf.validation.iq import dependency_closure, verify_distribution
from etmf.validation.matrix import build_matrix


def _test(nodeid, outcome, *reqs, message=""):
    return {"nodeid": nodeid, "outcome": outcome, "requirements": list(reqs),
            "start": "2026-11-26T09:30:00.000+00:00", "stop": "2026-11-26T09:30:01.000+00:00",
            "message": message}


def test_requirement_status_follows_its_tests():
    matrix = build_matrix([
        _test("t::a", "passed", "AUD-1", "AUD-2"),
        _test("t::b", "failed", "AUD-2", message="E   AssertionError: chain broken\nmore"),
        _test("t::c", "skipped", "AUD-4", message="needs PostgreSQL"),
        _test("t::d", "passed", "AUD-5"), _test("t::e", "skipped", "AUD-5"),
    ], scope=["AUD-1", "AUD-2", "AUD-4", "AUD-5", "AUD-7"])
    status = {row.requirement.id: row.status for row in matrix.rows}
    assert status == {"AUD-1": "pass", "AUD-2": "fail", "AUD-4": "no test", "AUD-5": "pass",
                      "AUD-7": "no test"}
    kinds = [(d.kind, d.subject) for d in matrix.deviations]
    assert ("test failed", "t::b") in kinds
    assert ("requirement without test", "AUD-4") in kinds
    assert ("requirement without test", "AUD-7") in kinds
    failed = next(d for d in matrix.deviations if d.subject == "t::b")
    assert failed.detail == "AUD-2: AssertionError: chain broken"
    assert matrix.outcome_counts == {"passed": 2, "failed": 1, "skipped": 2}


def test_iq_inventory_covers_the_server_and_test_dependencies():
    names = dependency_closure()
    for expected in ("etmf", "flask", "sqlalchemy", "pyhanko", "reportlab", "pytest",
                     "pytest-xdist"):
        assert expected in names


def test_iq_names_an_installed_file_that_differs_from_its_record(tmp_path):
    site = tmp_path / "site"
    (site / "demo_pkg").mkdir(parents=True)
    module = site / "demo_pkg" / "__init__.py"
    module.write_bytes(b"VALUE = 1\n")
    digest = base64.urlsafe_b64encode(hashlib.sha256(b"VALUE = 1\n").digest()).rstrip(b"=")
    info = site / "demo_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-pkg\nVersion: 1.0\n")
    (info / "RECORD").write_text(
        f"demo_pkg/__init__.py,sha256={digest.decode()},10\n"
        "demo_pkg-1.0.dist-info/RECORD,,\n")
    dist = metadata.PathDistribution(info)

    clean = verify_distribution(dist)
    assert (clean.name, clean.version, clean.files_checked, clean.problems) == (
        "demo-pkg", "1.0", 1, [])
    module.write_bytes(b"VALUE = 2\n")
    assert verify_distribution(dist).problems == [
        "demo_pkg/__init__.py differs from its RECORD hash"]
    module.unlink()
    assert verify_distribution(dist).problems == ["demo_pkg/__init__.py is missing"]
    assert verify_distribution(dist).fingerprint == clean.fingerprint
