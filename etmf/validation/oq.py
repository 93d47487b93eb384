"""Operational qualification: run the requirement-marked tests and collect their evidence.

The tests live in the project's ``tests/`` folder beside the installed package source (an
editable install or a source checkout); an installation without them cannot produce OQ
evidence and says so. The run uses the same database backend as the configured instance:
when it is PostgreSQL, its URL is handed to the suite as ``ETMF_TEST_DATABASE_URL``, and the
suite creates its own scratch databases there (``CREATE DATABASE``; the configured database's
tables are never touched). Every other test builds its own scratch instance in a temporary
folder; the S3 tests run against moto's S3 server on loopback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import etmf
from etmf.errors import EtmfError


class SuiteNotFound(EtmfError):
    """The test suite that OQ runs is not installed next to the package."""


@dataclass(frozen=True)
class OqPlan:
    """What to run: the suite, the selection and the environment."""

    suite: Path  # the tests/ folder
    project_root: Path  # its parent, holding pyproject.toml
    selection: tuple[str, ...] = ()  # paths (default: the whole suite)
    keyword: str | None = None
    requirements: tuple[str, ...] = ()
    only_marked: bool = True
    workers: int = 2
    database_url: str | None = None  # PostgreSQL URL handed to the suite


@dataclass
class OqResult:
    command: list[str]
    returncode: int
    evidence: dict[str, Any]
    log_path: Path
    backends: dict[str, str] = field(default_factory=dict)

    @property
    def tests(self) -> list[dict[str, Any]]:
        return list(self.evidence.get("tests", []))


def locate_suite(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The ``tests/`` folder to run: the one given, or the one next to the package source.

    Raises :class:`SuiteNotFound` with what was looked for."""
    if explicit is not None:
        suite = Path(explicit).resolve()
        looked = [suite]
    else:
        package_dir = Path(etmf.__file__).resolve().parent
        looked = [package_dir.parent / "tests"]
        suite = looked[0]
    if (suite / "conftest.py").is_file() and (suite.parent / "pyproject.toml").is_file():
        return suite
    raise SuiteNotFound(
        "The OQ test suite was not found (looked for tests/conftest.py with pyproject.toml "
        f"beside it in {', '.join(str(p) for p in looked)}). OQ runs the project's tests: "
        "install from a source checkout (pip install -e '.[test]') or pass --suite DIR.")


def pytest_command(plan: OqPlan, evidence_path: Path) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
           "-p", "etmf.validation.pytest_plugin", "--etmf-evidence", str(evidence_path),
           "-c", str(plan.project_root / "pyproject.toml"),
           "--rootdir", str(plan.project_root)]
    if plan.only_marked:
        cmd += ["-m", "req"]
    if plan.requirements:
        cmd += ["--etmf-requirements", ",".join(plan.requirements)]
    if plan.keyword:
        cmd += ["-k", plan.keyword]
    if plan.workers > 0:
        cmd += ["-n", str(plan.workers)]
    else:
        cmd += ["-p", "no:xdist"]
    cmd += list(plan.selection) or [str(plan.suite)]
    return cmd


def suite_environment(plan: OqPlan) -> dict[str, str]:
    """The environment of the test run: no ETMF_* settings of the instance (the tests build
    their own), no variables of an enclosing pytest run, the PostgreSQL URL if configured."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ETMF_", "PYTEST_")) and k != "COV_CORE_SOURCE"}
    if plan.database_url:
        env["ETMF_TEST_DATABASE_URL"] = plan.database_url
    return env


def run_oq(plan: OqPlan, output: Path,
           progress: Callable[[int | None, int], None] | None = None) -> OqResult:
    """Run the selected tests in a child process and read the evidence they produced.

    ``progress(total, done)`` is called while the run goes on (total is None until the
    tests are collected)."""
    evidence_path = output / "oq-evidence.json"
    progress_path = evidence_path.with_name(evidence_path.name + ".progress")
    log_path = output / "oq-pytest.log"
    for stale in (evidence_path, progress_path):
        stale.unlink(missing_ok=True)
    cmd = pytest_command(plan, evidence_path)
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=plan.project_root, env=suite_environment(plan),
                                stdout=log, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if progress is not None:
                    progress(*_read_progress(progress_path))
    if progress is not None:
        progress(*_read_progress(progress_path))
    progress_path.unlink(missing_ok=True)
    if evidence_path.is_file():
        evidence = json.loads(evidence_path.read_text(encoding="utf-8"))
    else:  # pytest stopped before the session finished (a usage error, for example)
        evidence = {"tests": [], "collection_errors": [], "exitstatus": proc.returncode}
    tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-1:]
    evidence["summary"] = tail[0] if tail else ""
    return OqResult(command=cmd, returncode=proc.returncode, evidence=evidence,
                    log_path=log_path)


def _read_progress(path: Path) -> tuple[int | None, int]:
    total: int | None = None
    done = 0
    try:
        lines: Sequence[str] = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None, 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:  # a line being written right now
            continue
        if "collected" in record:
            total = int(record["collected"])
        elif "done" in record:
            done += 1
    return total, done
