"""Asynchronous, batched indexing so that no upload waits for a search commit.

A Whoosh commit costs tens to hundreds of milliseconds whatever its size (about 15 documents/s
one at a time, about 200/s in batches), so the request path only calls
:meth:`BatchingIndexer.submit` after its own transaction commits; a background thread writes
batches of up to ``batch_size`` documents, one commit each.

What can be lost, and how it comes back: pending documents live in memory. If the process
exits before they are written (crash, kill -9, or :meth:`BatchingIndexer.close` timing out),
they are not in the index; ``etmf search reindex`` rebuilds the index from the documents
table, and the server keeps an ``indexed_at``-style marker per document version so that a
partial reindex can pick up only what is missing. A failing write is logged and retried with
back-off, never dropped.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from etmf.search.base import SearchDoc, SearchError, SearchUnavailable

log = logging.getLogger(__name__)

# Failures of a batch (other than "unavailable") before it is split to find a bad document.
_ATTEMPTS_BEFORE_SPLIT = 3

Clock = Callable[[], float]


class BatchWriter(Protocol):
    """The part of :class:`etmf.search.base.SearchIndex` the indexer needs."""

    def index(self, docs: Iterable[SearchDoc]) -> int:
        """Insert or replace ``docs`` in one commit."""
        ...


class BatchingIndexer:
    """Collects submitted documents and writes them to ``index`` in batches from one thread.

    A batch is written when it reaches ``batch_size`` documents, when its oldest document
    has waited ``max_delay_s``, or at once when :meth:`flush` is called. After a failure the
    same batch is retried after ``retry_initial_s``, doubling up to ``retry_max_s`` (see
    :meth:`_write_until_done` for how a single bad document is isolated).
    """

    def __init__(self, index: BatchWriter, batch_size: int = 200, max_delay_s: float = 2.0,
                 *, retry_initial_s: float = 0.5, retry_max_s: float = 60.0,
                 clock: Clock = time.monotonic) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._index = index
        self._batch_size = batch_size
        self._max_delay_s = max_delay_s
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._clock = clock
        self._queue: deque[tuple[float, SearchDoc]] = deque()
        self._cond = threading.Condition()
        self._submitted = 0
        self._written = 0
        self._in_flight = 0
        self._flush_wanted = 0  # how many flush() calls are waiting
        self._closing = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self.failures = 0  # failed write attempts so far (for the admin page and tests)
        self.set_aside: list[int] = []  # ids of documents that could not be indexed at all

    # --- producer side --------------------------------------------------------------

    def submit(self, doc: SearchDoc) -> None:
        """Queue one document for indexing; returns at once (call after your commit)."""
        with self._cond:
            if self._closing:
                raise SearchError("The search indexer is closed; documents can no longer be queued.")
            self._queue.append((self._clock(), doc))
            self._submitted += 1
            self._ensure_worker()
            self._cond.notify_all()

    def lag(self) -> int:
        """Documents submitted but not yet written (queued plus the batch being written)."""
        with self._cond:
            return len(self._queue) + self._in_flight

    def flush(self, timeout: float | None = None) -> bool:
        """Write everything submitted so far now; True when done within ``timeout`` seconds.

        "Done" includes documents set aside after repeated failures (see :attr:`set_aside`).
        """
        with self._cond:
            target = self._submitted
            if self._written >= target:
                return True
            self._flush_wanted += 1
            self._cond.notify_all()
            try:
                return self._cond.wait_for(lambda: self._written >= target, timeout)
            finally:
                self._flush_wanted -= 1

    def close(self, timeout: float | None = 10.0) -> bool:
        """Flush, then stop the thread. True if nothing was left unwritten."""
        flushed = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)
        if not flushed:
            log.error("search indexer closed with %d documents unwritten; "
                      "run `etmf search reindex`", self.lag())
        return flushed

    def _ensure_worker(self) -> None:
        # Started lazily and again after a fork: threads do not survive fork() (gunicorn).
        if self._thread is None or not self._thread.is_alive() or self._pid != os.getpid():
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="search-indexer",
                                            daemon=True)
            self._thread.start()

    # --- worker side ----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._write_until_done(batch)

    def _batch_is_due(self) -> bool:
        if not self._queue:
            return False
        if self._closing or self._flush_wanted or len(self._queue) >= self._batch_size:
            return True
        return self._clock() - self._queue[0][0] >= self._max_delay_s

    def _next_batch(self) -> list[SearchDoc] | None:
        with self._cond:
            while not self._batch_is_due():
                if self._closing and not self._queue:
                    return None
                wait = None
                if self._queue:
                    wait = max(self._max_delay_s - (self._clock() - self._queue[0][0]), 0.001)
                self._cond.wait(wait)
            size = min(self._batch_size, len(self._queue))
            batch = [self._queue.popleft()[1] for _ in range(size)]
            self._in_flight = len(batch)
            return batch

    def _write_until_done(self, batch: list[SearchDoc]) -> None:
        """Write one batch, retrying with back-off.

        :class:`SearchUnavailable` (index locked, database down) is transient: retried for as
        long as it takes. Any other error may come from one bad document: after
        ``_ATTEMPTS_BEFORE_SPLIT`` tries the batch is halved until the culprit is alone, and a
        single document that still fails is set aside (logged with its id, listed in
        :attr:`set_aside`) so that it cannot block every later upload.
        """
        delay = self._retry_initial_s
        attempts = 0
        while True:
            try:
                self._index.index(batch)
            except SearchUnavailable:
                self.failures += 1
                log.warning("search index unavailable for %d documents; retrying in %.1f s",
                            len(batch), delay, exc_info=True)
            except Exception:
                self.failures += 1
                attempts += 1
                log.exception("search indexing of %d documents failed; retrying in %.1f s",
                              len(batch), delay)
                if attempts >= _ATTEMPTS_BEFORE_SPLIT and len(batch) > 1:
                    middle = len(batch) // 2
                    self._write_until_done(batch[:middle])
                    self._write_until_done(batch[middle:])
                    return
                if attempts >= _ATTEMPTS_BEFORE_SPLIT:
                    self._set_aside(batch[0])
                    return
            else:
                self._done(len(batch))
                return
            if not self._back_off(delay, batch):
                return
            delay = min(delay * 2, self._retry_max_s)

    def _back_off(self, delay: float, batch: list[SearchDoc]) -> bool:
        """Wait before a retry; False when shutting down (the batch is then abandoned)."""
        with self._cond:
            if self._closing:
                ids = ", ".join(str(d.document_id) for d in batch[:20])
                log.error("search indexer stopping with %d documents unwritten (ids %s); "
                          "run `etmf search reindex`", len(batch), ids)
                self._in_flight -= len(batch)
                return False
            self._cond.wait_for(lambda: self._closing, delay)
            return True

    def _set_aside(self, doc: SearchDoc) -> None:
        log.error("search indexing of document %d keeps failing; set aside. Fix the cause, "
                  "then run `etmf search reindex`", doc.document_id)
        with self._cond:
            self.set_aside.append(doc.document_id)
        self._done(1)

    def _done(self, count: int) -> None:
        with self._cond:
            self._written += count
            self._in_flight -= count
            self._cond.notify_all()
