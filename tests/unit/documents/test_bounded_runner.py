"""Parsers run in worker processes whose time and memory are bounded; failures come back."""

from __future__ import annotations

import os
import time

import pytest

from etmf.documents.extract import (
    BoundedRunCrashed,
    BoundedRunFailed,
    BoundedRunner,
    BoundedRunOutOfMemory,
    BoundedRunTimeout,
)
from tests.unit.documents import workload
from tests.unit.documents.conftest import RecordingRunner


def call_pid(runner: BoundedRunner) -> int:
    return runner.run(os.getpid, timeout_s=30, memory_mb=512)


def test_function_runs_in_another_process_and_returns_its_value(runner: RecordingRunner) -> None:
    assert runner.run(divmod, 17, 5, timeout_s=30, memory_mb=512) == (3, 2)
    assert call_pid(runner) != os.getpid()


def test_healthy_worker_is_reused(runner: RecordingRunner) -> None:
    assert call_pid(runner) == call_pid(runner)


@pytest.mark.req("OPS-2")
def test_call_over_its_time_bound_is_stopped_and_the_worker_replaced(
    runner: RecordingRunner,
) -> None:
    before = call_pid(runner)

    with pytest.raises(BoundedRunTimeout, match=r"stopped after 0\.2 s"):
        runner.run(time.sleep, 60, timeout_s=0.2, memory_mb=512)

    assert call_pid(runner) != before
    assert not _is_running(before)


@pytest.mark.req("OPS-2")
def test_call_over_its_memory_bound_is_refused_and_the_worker_replaced(
    runner: RecordingRunner,
) -> None:
    before = call_pid(runner)

    with pytest.raises(BoundedRunOutOfMemory, match="more than the 256 MB"):
        runner.run(bytearray, 2_000_000_000, timeout_s=30, memory_mb=256)

    assert call_pid(runner) != before


def test_memory_bound_applies_per_call(runner: RecordingRunner) -> None:
    size = 160 * 1024 * 1024  # a worker itself takes about 80 MB of address space
    with pytest.raises(BoundedRunOutOfMemory):
        runner.run(workload.allocate, size, timeout_s=30, memory_mb=128)

    assert runner.run(workload.allocate, size, timeout_s=30, memory_mb=512) == size


def test_crashed_worker_is_reported_with_its_exit_code_and_replaced(
    runner: RecordingRunner,
) -> None:
    with pytest.raises(BoundedRunCrashed, match=r"exit code 7"):
        runner.run(os._exit, 7, timeout_s=30, memory_mb=512)

    assert call_pid(runner) > 0


def test_exception_in_the_function_comes_back_as_text(runner: RecordingRunner) -> None:
    with pytest.raises(BoundedRunFailed) as caught:
        runner.run(int, "not a number", timeout_s=30, memory_mb=512)

    assert caught.value.exc_type == "ValueError"
    assert "not a number" in str(caught.value)


def test_closed_runner_refuses_work() -> None:
    runner = BoundedRunner(max_workers=1)
    runner.close()

    with pytest.raises(RuntimeError, match="closed"):
        call_pid(runner)


def _is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # a killed worker may wait, a zombie, to be reaped
