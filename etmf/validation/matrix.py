"""The traceability matrix: requirement → tests → result, and the deviations it shows."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from etmf.validation.requirements import REQUIREMENTS, Requirement

PASSING = {"passed", "xfailed"}
FAILING = {"failed", "error", "xpassed"}


@dataclass
class TracedTest:
    nodeid: str
    outcome: str
    start: str | None
    stop: str | None
    message: str = ""


@dataclass
class MatrixRow:
    requirement: Requirement
    tests: list[TracedTest] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``pass``, ``fail`` or ``no test`` (a test that only skipped is no evidence)."""
        outcomes = {t.outcome for t in self.tests}
        if outcomes & FAILING:
            return "fail"
        if outcomes & PASSING:
            return "pass"
        return "no test"


@dataclass(frozen=True)
class Deviation:
    kind: str  # "test failed", "requirement without test", "test skipped", "IQ check failed" …
    subject: str
    detail: str


@dataclass
class Matrix:
    rows: list[MatrixRow]
    deviations: list[Deviation]
    tests_run: int
    outcome_counts: dict[str, int]

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)


def build_matrix(tests: Iterable[dict[str, Any]], *,
                 collection_errors: Sequence[dict[str, str]] = (),
                 scope: Sequence[str] = ()) -> Matrix:
    """Trace each test's result to the requirements its markers name.

    ``scope`` limits the matrix to these requirement IDs (a partial re-validation)."""
    wanted = set(scope)
    rows = [MatrixRow(r) for r in REQUIREMENTS if not wanted or r.id in wanted]
    by_id = {row.requirement.id: row for row in rows}
    deviations: list[Deviation] = []
    counts: dict[str, int] = {}
    run = 0
    for test in tests:
        run += 1
        outcome = str(test.get("outcome", "error"))
        counts[outcome] = counts.get(outcome, 0) + 1
        traced = TracedTest(nodeid=str(test["nodeid"]), outcome=outcome,
                            start=test.get("start"), stop=test.get("stop"),
                            message=str(test.get("message") or ""))
        requirements = [str(r) for r in test.get("requirements", [])]
        for rid in requirements:
            if rid in by_id:
                by_id[rid].tests.append(traced)
        names = ", ".join(requirements) or "no requirement"
        if outcome in FAILING:
            deviations.append(Deviation(f"test {outcome}", traced.nodeid,
                                        f"{names}: {_first_line(traced.message)}"))
        elif outcome == "skipped":
            deviations.append(Deviation("test skipped", traced.nodeid,
                                        f"{names}: {_first_line(traced.message)}"))
    for error in collection_errors:
        deviations.append(Deviation("collection error", error.get("nodeid") or "(session)",
                                    _first_line(error.get("message", ""))))
    for row in rows:
        if row.status == "no test":
            deviations.append(Deviation(
                "requirement without test", row.requirement.id,
                "no test carrying this requirement passed"
                + (" (its tests were skipped)" if row.tests else " (no test carries it)")))
    return Matrix(rows=rows, deviations=deviations, tests_run=run, outcome_counts=counts)


def _first_line(message: str) -> str:
    """The most telling line of a failure: the assertion (``E …``) or the last line."""
    # Exception groups draw their tree with "+-", "|" prefixes: read through them.
    lines = [line.strip().lstrip("|+").strip() for line in message.strip().splitlines()]
    lines = [line for line in lines if line.strip("-+| ")]
    errors = [line[1:].strip() for line in lines if line.startswith("E ")] or [
        line for line in lines if re.match(r"[\w.]*(Error|Warning|Exception|Failed)\b", line)]
    text = errors[0] if errors else (lines[-1] if lines else "")
    return text[:300]
