"""pytest plugin for operational qualification: evidence per requirement.

Loaded explicitly (``pytest -p etmf.validation.pytest_plugin``, as `etmf validate` does); it
is never registered globally, so an ordinary test run is unchanged.

* ``--etmf-evidence PATH`` writes a JSON file with, for every test run: its node id, the
  requirement IDs of its ``req`` markers, its outcome, start and stop (UTC) and, for a
  failure, the message. Each finished test is also appended as one line to
  ``PATH.progress`` so a caller can show progress while the run goes on.
* ``--etmf-requirements ID,ID`` keeps only the tests that carry one of these IDs.
* Guard: a ``req`` marker naming an ID that is not in the catalogue, or with no ID, fails
  that test with a message saying so (a typo would otherwise silently orphan its evidence).

Works with pytest-xdist: markers are read on the workers and travel to the controller in
the reports' ``user_properties``; only the controller writes the files.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from etmf.validation.requirements import requirement_ids

EVIDENCE_FORMAT = 1
_PROPERTY = "etmf_requirements"
_UNKNOWN = pytest.StashKey[list[str]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("etmf-validation", "eTMF validation evidence")
    group.addoption("--etmf-evidence", metavar="PATH", default=None,
                    help="Write each test's requirements, outcome and times to this JSON file.")
    group.addoption("--etmf-requirements", metavar="IDS", default=None,
                    help="Comma-separated requirement IDs: run only tests that carry one.")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "req(id): the requirement (catalogue ID) this test demonstrates")
    path = config.getoption("etmf_evidence")
    if path and not hasattr(config, "workerinput"):  # the xdist controller or a plain run
        config.pluginmanager.register(EvidenceRecorder(Path(path)), "etmf-evidence-recorder")


def marker_requirements(item: pytest.Item) -> tuple[list[str], list[str]]:
    """The requirement IDs of an item's ``req`` markers, and the problems found in them."""
    ids: list[str] = []
    problems: list[str] = []
    for marker in item.iter_markers("req"):
        if not marker.args:
            problems.append("a req marker without an ID")
        for arg in marker.args:
            if not isinstance(arg, str):
                problems.append(f"req({arg!r}) is not a string ID")
            elif arg not in ids:
                ids.append(arg)
    return ids, problems


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    known = requirement_ids()
    wanted_raw = config.getoption("etmf_requirements")
    wanted = {x.strip() for x in wanted_raw.split(",") if x.strip()} if wanted_raw else None
    if wanted is not None and (unknown_wanted := sorted(wanted - known)):
        raise pytest.UsageError(
            f"--etmf-requirements names {', '.join(unknown_wanted)}, not in the catalogue.")
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        ids, problems = marker_requirements(item)
        problems += [f"requirement {rid} is not in the catalogue" for rid in ids
                     if rid not in known]
        if problems:
            item.stash[_UNKNOWN] = problems
        item.user_properties.append((_PROPERTY, ids))
        if wanted is not None and not wanted.intersection(ids):
            deselected.append(item)
        else:
            kept.append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


def pytest_runtest_setup(item: pytest.Item) -> None:
    problems = item.stash.get(_UNKNOWN, None)
    if problems:
        pytest.fail(
            f"{_display_nodeid(item.nodeid, item.location[0])}: {'; '.join(problems)} "
            "(etmf/validation/requirements.py); "
            "fix the marker, or add the requirement to the catalogue.",
            pytrace=False,
        )


def _display_nodeid(nodeid: str, path: str) -> str:
    """A test file outside the rootdir gets a node id without its path: put it back."""
    return f"{path}{nodeid}" if nodeid.startswith("::") else nodeid


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


def _message(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2])
    text = report.longreprtext or ""
    return text[-3000:]


class EvidenceRecorder:
    """Collects each test's result (on the controller) and writes the evidence files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.progress_path = path.with_name(path.name + ".progress")
        self.tests: dict[str, dict[str, Any]] = {}
        self.collection_errors: list[dict[str, str]] = []
        self.collected: int | None = None
        self.started_at = datetime.now(UTC)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.progress_path.write_text("", encoding="utf-8")

    def _progress(self, record: dict[str, Any]) -> None:
        with self.progress_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = len(session.items)
        self._progress({"collected": self.collected})

    @pytest.hookimpl(optionalhook=True)
    def pytest_xdist_node_collection_finished(self, node: Any, ids: list[str]) -> None:
        if self.collected is None:
            self.collected = len(ids)
            self._progress({"collected": self.collected})

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(
                {"nodeid": report.nodeid, "message": (report.longreprtext or "")[-3000:]})

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        nodeid = _display_nodeid(report.nodeid, report.location[0])
        entry = self.tests.setdefault(nodeid, {
            "nodeid": nodeid, "requirements": [], "outcome": "passed",
            "start": None, "stop": None, "duration": 0.0, "message": "",
        })
        for name, value in report.user_properties:
            if name == _PROPERTY and isinstance(value, (list, tuple)):
                entry["requirements"] = [str(v) for v in value]
        if entry["start"] is None or report.start < entry["_start"]:
            entry["_start"] = report.start
            entry["start"] = _iso(report.start)
        entry["stop"] = _iso(report.stop)
        entry["duration"] = round(entry["duration"] + report.duration, 3)
        if hasattr(report, "wasxfail"):
            entry["outcome"] = "xfailed" if report.skipped else "xpassed"
            entry["message"] = str(report.wasxfail)
        elif report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["message"] = _message(report)
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            entry["message"] = _message(report)
        if report.when == "teardown":
            self._progress({"done": report.nodeid, "outcome": entry["outcome"]})

    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        tests = []
        for entry in self.tests.values():
            entry.pop("_start", None)
            tests.append(entry)
        evidence = {
            "format": EVIDENCE_FORMAT,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "exitstatus": int(exitstatus),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "pytest": pytest.__version__,
            "args": list(session.config.invocation_params.args),
            "rootdir": str(session.config.rootpath),
            "workers": getattr(session.config.option, "numprocesses", None) or 0,
            "collected": self.collected,
            "collection_errors": self.collection_errors,
            "tests": sorted(tests, key=lambda t: t["nodeid"]),
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(evidence, indent=2, ensure_ascii=False), encoding="utf-8")
        tmp.replace(self.path)
