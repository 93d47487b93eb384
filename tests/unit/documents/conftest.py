"""Fixtures for intake and extraction: real files on disk and one shared bounded runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from etmf.documents.extract import BoundedRunner
from tests.unit.documents import factories

T = TypeVar("T")


class RecordingRunner(BoundedRunner):
    """A real bounded runner that also remembers which functions it was asked to run."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.calls: list[str] = []

    def run(self, func: Callable[..., T], /, *args: Any, timeout_s: float, memory_mb: int) -> T:
        self.calls.append(func.__qualname__)
        return super().run(func, *args, timeout_s=timeout_s, memory_mb=memory_mb)


@pytest.fixture(scope="session")
def session_runner() -> Iterator[RecordingRunner]:
    # One warm pool for the whole session: workers are forked once, not per test.
    with RecordingRunner() as runner:
        yield runner


@pytest.fixture
def runner(session_runner: RecordingRunner) -> RecordingRunner:
    session_runner.calls.clear()
    return session_runner


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """Write bytes to a file in the test's folder and return its path."""

    def write(name: str, data: bytes) -> Path:
        path = tmp_path / name
        path.write_bytes(data)
        return path

    return write


@pytest.fixture(scope="session")
def zip_bomb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200 KB DOCX-shaped file that inflates to 200 MB."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.docx"
    factories.write_deflate_bomb(path, uncompressed_mib=200)
    return path
