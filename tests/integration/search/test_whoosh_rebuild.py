"""Whoosh-only: a rebuild writes big commits, in parallel writer processes when there are
many documents, and stops with a clear error, never a hang, when a writer process dies."""

from __future__ import annotations

import os

import pytest
from whoosh import multiproc

from etmf.search import Scope, SearchQuery, SearchUnavailable, whoosh_index
from etmf.search.whoosh_index import WhooshIndex

from .docs import STUDY_A, make_doc

SCOPE = Scope({STUDY_A: None})
WORDS = ("oxygen", "zebra", "quartz", "lemon", "harbour")


def docs(count: int) -> list:  # type: ignore[type-arg]
    return [make_doc(n, title=f"Report {WORDS[n % 5]}", text=f"{WORDS[n % 3]} visit {n}")
            for n in range(1, count + 1)]


def batches(items: list, size: int = 4) -> list:  # type: ignore[type-arg]
    return [items[k:k + size] for k in range(0, len(items), size)]


def found(index: WhooshIndex, text: str) -> set[int]:
    return {h.document_id for h in index.search(SearchQuery(text, SCOPE, limit=100)).hits}


@pytest.fixture
def parallel(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Small thresholds, two cores whatever the machine; records each writer's processes."""
    monkeypatch.setattr(whoosh_index, "PARALLEL_FROM", 5)
    monkeypatch.setattr(whoosh_index, "REBUILD_CHUNK", 13)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    procs: list[int] = []
    real = whoosh_index._ParallelWriter.__init__

    def recording(self, ix, procs_=None, **kwargs):  # type: ignore[no-untyped-def]
        procs.append(kwargs.get("procs", procs_))
        real(self, ix, **kwargs)

    monkeypatch.setattr(whoosh_index._ParallelWriter, "__init__", recording)
    return procs


@pytest.mark.parametrize("count", [3, 30])  # in-process; parallel in three commits
def test_a_rebuild_writes_every_document_once_as_the_live_path_would(
        tmp_path, parallel: list[int], count: int) -> None:  # type: ignore[no-untyped-def]
    live, rebuilt = WhooshIndex(tmp_path / "live"), WhooshIndex(tmp_path / "rebuilt")
    live.index(docs(count))
    progress: list[int] = []

    written = rebuilt.index_new(batches(docs(count)), progress.append)

    assert written == count == rebuilt.count() and sum(progress) == count
    for text in ("oxygen", "zebra", '"oxygen visit"', "visit", "report"):
        assert found(rebuilt, text) == found(live, text)
    assert parallel == ([] if count == 3 else [2, 2, 2])  # 13 + 13 + 4 documents
    # Every segment is written as separate files: a compound one is read through Whoosh's
    # Python sub-file (the index is opened without mmap), many times slower per block.
    for index in (live, rebuilt):
        assert list(index.path.glob("*.pst"))  # a segment's postings, in a file of its own
        assert not list(index.path.glob("*.seg"))  # no compound segment file


def test_a_dead_writer_process_stops_the_rebuild_with_a_clear_error(
        tmp_path, parallel: list[int], monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    def dies(self, filename, doc_count):  # type: ignore[no-untyped-def]
        os._exit(9)  # as if killed for memory: in the forked writer process

    monkeypatch.setattr(multiproc.SubWriterTask, "_process_file", dies)
    monkeypatch.setattr(whoosh_index, "REBUILD_CHUNK", 5_000)
    index = WhooshIndex(tmp_path)

    with pytest.raises(SearchUnavailable, match=r"writer process stopped \(exit code 9\)"):
        index.index_new(batches(docs(3_000), 200))

    assert index.count() == 0  # nothing half-committed
    index.index(docs(2))  # the index's lock was let go
    assert index.count() == 2
