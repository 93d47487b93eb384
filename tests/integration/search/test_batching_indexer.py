"""The background indexer: uploads never wait for a search commit, and nothing is lost."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator

import pytest

from etmf.search import (
    BatchingIndexer,
    Scope,
    SearchDoc,
    SearchError,
    SearchIndex,
    SearchQuery,
    SearchResults,
    SearchUnavailable,
)
from tests.integration.search.docs import STUDY_A, make_doc

FLUSH_TIMEOUT_S = 60.0


class CountingIndex:
    """A real index that remembers each write it was asked for."""

    def __init__(self, inner: SearchIndex) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def index(self, docs: Iterable[SearchDoc]) -> int:
        batch = list(docs)
        self.batches.append(len(batch))
        return self.inner.index(batch)

    def search(self, query: SearchQuery) -> SearchResults:
        return self.inner.search(query)


class FailingFirstIndex(CountingIndex):
    """A real index that is unavailable for its first ``failures`` writes (e.g. locked)."""

    def __init__(self, inner: SearchIndex, failures: int) -> None:
        super().__init__(inner)
        self.failures_left = failures

    def index(self, docs: Iterable[SearchDoc]) -> int:
        if self.failures_left:
            self.failures_left -= 1
            raise SearchUnavailable("index locked by another writer")
        return super().index(docs)


class RejectsOneDocumentIndex(CountingIndex):
    """A real index that refuses every batch containing one malformed document."""

    def __init__(self, inner: SearchIndex, bad_id: int) -> None:
        super().__init__(inner)
        self.bad_id = bad_id

    def index(self, docs: Iterable[SearchDoc]) -> int:
        batch = list(docs)
        if any(doc.document_id == self.bad_id for doc in batch):
            raise SearchError(f"document {self.bad_id} is malformed")
        return super().index(batch)


class GatedIndex(CountingIndex):
    """A real index whose writes wait until the test opens the gate: a slow commit."""

    def __init__(self, inner: SearchIndex) -> None:
        super().__init__(inner)
        self.gate = threading.Event()

    def index(self, docs: Iterable[SearchDoc]) -> int:
        assert self.gate.wait(FLUSH_TIMEOUT_S)
        return super().index(docs)


@pytest.fixture
def indexers() -> Iterator[list[BatchingIndexer]]:
    """Indexers made by a test, closed afterwards so no thread outlives it."""
    made: list[BatchingIndexer] = []
    yield made
    for indexer in made:
        indexer.close(timeout=FLUSH_TIMEOUT_S)


def everything(index: CountingIndex | SearchIndex, text: str = "") -> SearchResults:
    return index.search(SearchQuery(text, Scope({STUDY_A: None}), limit=1))


def test_thousand_submissions_are_all_searchable_after_a_few_batch_writes(
        search_index: SearchIndex, indexers: list[BatchingIndexer]) -> None:
    counting = CountingIndex(search_index)
    indexer = BatchingIndexer(counting, batch_size=200)
    indexers.append(indexer)

    for n in range(1, 1001):
        indexer.submit(make_doc(n, text=f"queued upload {n}"))

    assert indexer.flush(timeout=FLUSH_TIMEOUT_S) is True
    assert indexer.lag() == 0
    assert everything(search_index, "queued").total == 1000
    assert sum(counting.batches) == 1000
    assert len(counting.batches) <= 10
    assert max(counting.batches) <= 200


def test_failed_writes_are_retried_and_nothing_is_lost(
        search_index: SearchIndex, indexers: list[BatchingIndexer],
        caplog: pytest.LogCaptureFixture) -> None:
    flaky = FailingFirstIndex(search_index, failures=2)
    indexer = BatchingIndexer(flaky, batch_size=20, retry_initial_s=0.01)
    indexers.append(indexer)

    with caplog.at_level(logging.WARNING, logger="etmf.search.indexer"):
        for n in range(1, 51):
            indexer.submit(make_doc(n, text="retried"))
        assert indexer.flush(timeout=FLUSH_TIMEOUT_S) is True

    assert indexer.failures == 2
    assert everything(search_index, "retried").total == 50
    assert sum("retrying" in r.getMessage() for r in caplog.records) == 2


def test_one_bad_document_is_set_aside_and_does_not_block_the_others(
        search_index: SearchIndex, indexers: list[BatchingIndexer],
        caplog: pytest.LogCaptureFixture) -> None:
    picky = RejectsOneDocumentIndex(search_index, bad_id=13)
    indexer = BatchingIndexer(picky, batch_size=40, retry_initial_s=0.001)
    indexers.append(indexer)

    with caplog.at_level(logging.ERROR, logger="etmf.search.indexer"):
        for n in range(1, 41):
            indexer.submit(make_doc(n, text="mostly fine"))
        assert indexer.flush(timeout=FLUSH_TIMEOUT_S) is True

    assert indexer.set_aside == [13]
    assert everything(search_index, "mostly").total == 39
    assert any("document 13" in r.getMessage() and "reindex" in r.getMessage()
               for r in caplog.records)


def test_submit_returns_at_once_while_a_commit_is_slow(
        search_index: SearchIndex, indexers: list[BatchingIndexer]) -> None:
    gated = GatedIndex(search_index)
    indexer = BatchingIndexer(gated, batch_size=5)
    indexers.append(indexer)

    for n in range(1, 11):
        indexer.submit(make_doc(n))  # would hang here if submit waited for the write

    assert indexer.lag() == 10
    assert indexer.flush(timeout=0.0) is False
    gated.gate.set()
    assert indexer.flush(timeout=FLUSH_TIMEOUT_S) is True
    assert indexer.lag() == 0
    assert everything(search_index).total == 10


def test_documents_wait_for_a_fuller_batch_until_flushed(
        search_index: SearchIndex, indexers: list[BatchingIndexer]) -> None:
    indexer = BatchingIndexer(search_index, batch_size=200, max_delay_s=3600.0)
    indexers.append(indexer)

    indexer.submit(make_doc(1))

    assert indexer.lag() == 1
    assert everything(search_index).total == 0
    assert indexer.flush(timeout=FLUSH_TIMEOUT_S) is True
    assert everything(search_index).total == 1


def test_closed_indexer_refuses_new_documents(search_index: SearchIndex) -> None:
    indexer = BatchingIndexer(search_index)
    indexer.submit(make_doc(1))

    assert indexer.close(timeout=FLUSH_TIMEOUT_S) is True
    assert everything(search_index).total == 1
    with pytest.raises(SearchError, match="closed"):
        indexer.submit(make_doc(2))
