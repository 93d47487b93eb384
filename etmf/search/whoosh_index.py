"""Whoosh implementation of :class:`etmf.search.base.SearchIndex` (embedded default).

Concurrency guarantee: Whoosh allows ONE writer at a time per index folder, enforced by a
file lock that works across threads and processes. :meth:`WhooshIndex.index` and
:meth:`WhooshIndex.delete` wait up to ``lock_timeout_s`` for that lock, then raise
:class:`SearchUnavailable` (the :class:`BatchingIndexer` retries later). Readers never take
the lock and always see the last committed generation, so searches run while a batch is
being written.

Time bound: Whoosh's own ``TimeLimitCollector`` stops work with SIGALRM, which only works in
a process's main thread (never the case in a web server) and interrupts unrelated code.
This module instead checks an injected clock between posting blocks of words, between
matched documents of phrases and inside phrase matching (the slow case: a phrase of common
words), and raises Whoosh's ``TimeLimit`` from there; what was found until then is kept
(for words: the segments finished). One step between checks (e.g. expanding a prefix) can
overrun the budget slightly.

Memory and sharing: Whoosh's searchers are not thread-safe (posting lists are read with
seek-then-read on a file object each searcher owns), so a searcher serves one search at a
time. They live in a pool owned by the index object: as many as searches ran at once,
reused until a commit, closed deterministically. The index is opened WITHOUT mmap: Whoosh's
mmap path copies each segment's postings and stored fields into a ``BytesIO`` per searcher
(≈ 60 MB per searcher at 25,000 documents); plain file reads share the OS page cache.
Facet counts and the browse order come from per-segment column values cached once per
segment (segments never change after their commit) and looked up for the matched documents.

Matching at scale (250,000 documents, a common word in 160,000 of them): Whoosh's matchers
step every posting in Python, so words are worked out as sets from whole posting blocks
(:func:`_word_docs`) from a ``words`` field holding each document's words once, without
positions, checked against the scope's kept flags (:class:`_AllowedCache`); common words'
postings are kept (:class:`_PostingsCache`), and phrases first ask the same field for their
pairs of adjacent words (:func:`_for_matching`) instead of reading word positions in every
document holding the words. Only the candidates' scores (at most
:data:`RANK_CANDIDATES` twice) and the page's highlights go through Whoosh's own scoring.
"""

from __future__ import annotations

import heapq
import html
import os
import pickle
import queue
import threading
import time
import weakref
from array import array
from bisect import bisect_left
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import date
from itertools import chain, compress, islice, pairwise
from pathlib import Path
from typing import Any

from whoosh import columns, fields, highlight, matching
from whoosh import query as wq
from whoosh.analysis import StemmingAnalyzer
from whoosh.codec.whoosh3 import W3LeafMatcher
from whoosh.filedb.filestore import FileStorage
from whoosh.index import LockError
from whoosh.matching.wrappers import FilterMatcher
from whoosh.multiproc import MpWriter
from whoosh.qparser import MultifieldParser
from whoosh.reading import TermNotFound
from whoosh.searching import Results, TimeLimit
from whoosh.util import random_name

from etmf.search.base import (
    MAX_INDEXED_TEXT_CHARS,
    SCHEMA_VERSION,
    SNIPPET_SOURCE_CHARS,
    SNIPPET_WINDOW_CHARS,
    Hit,
    ParsedText,
    SchemaMismatch,
    SearchDoc,
    SearchQuery,
    SearchResults,
    SearchUnavailable,
    clean_text,
    fallback_snippet,
    largest_values,
    metadata_text,
    parse_query_text,
    snippet_probes,
    unique_by_id,
)

Clock = Callable[[], float]

VERSION_FILE = "etmf-search-schema-version"
#: How this backend lays out :data:`SCHEMA_VERSION`'s fields; bumped on its own, so that a
#: change here asks only Whoosh indexes to be rebuilt. 2: the ``pairs`` field. 3: it became
#: the ``words`` field, holding every word of the text fields besides the pairs.
LAYOUT_VERSION = 3
NO_VALUE = "-"  # stands for "no site" / "no year" in keyword fields
NO_DATE = "00000000"  # sorts after every real date when sorting newest first
TEXT_FIELDS = ("title", "artifact_name", "meta", "body")
#: Every word of the text fields once, and every two words standing together, for matching.
WORDS_FIELD = "words"
# Title and artifact name weigh most, then the metadata, then the body, as in PostgreSQL.
FIELD_BOOSTS = {"title": 3.0, "artifact_name": 3.0, "meta": 2.0, "body": 1.0}
FACET_FIELDS = {"zone": "zone", "artifact": "artifact_id", "site": "site_key",
                "status": "status", "year": "year"}
#: A rebuild (:meth:`WhooshIndex.index_new`) commits this many documents at once ...
REBUILD_CHUNK = 50_000
#: ... in as many writer processes as cores (at most this many) when they are more than
#: :data:`PARALLEL_FROM`; starting processes costs more than it saves on fewer.
MAX_WRITER_PROCS = 4
PARALLEL_FROM = 2_000
#: Every segment writer's options, in-process or in a rebuild's writer processes: 128 MB
#: of postings pooled before a flush, and the segment's files kept separate (see
#: :meth:`WhooshIndex._writer`).
_SEGMENT_OPTIONS = {"limitmb": 128, "compound": False}
#: Idle searchers kept per index object (one per concurrent search is the steady state).
MAX_IDLE_SEARCHERS = 8


def build_schema() -> fields.Schema:
    """The Whoosh schema; changing it means bumping :data:`SCHEMA_VERSION`."""
    analyzer = StemmingAnalyzer()
    return fields.Schema(
        doc_id=fields.ID(stored=True, unique=True),
        # Only for ordering; a column costs nothing at index time, unlike NUMERIC's terms.
        doc_num=fields.COLUMN(columns.NumericColumn("q")),
        study_id=fields.ID(),
        site_key=fields.ID(sortable=True),
        zone=fields.ID(sortable=True),
        artifact_id=fields.ID(sortable=True),
        status=fields.ID(sortable=True),
        year=fields.ID(sortable=True),
        # YYYYMMDD: fixed width, so a term range is a date range (one term per document).
        date_key=fields.ID(sortable=True),
        title=fields.TEXT(analyzer=analyzer, stored=True),
        artifact_name=fields.TEXT(analyzer=analyzer),
        meta=fields.TEXT(analyzer=analyzer),
        body=fields.TEXT(analyzer=analyzer),
        # Each word of the text fields once, as they hold it (stemmed, no stop words), and
        # "first+second" for every two words standing together in one of them: a word's
        # documents in one posting list without positions, and phrases' pairs (see
        # :func:`_for_matching`). Never scored, but scorable: Whoosh looks for a field's
        # lengths file once a posting and finds none otherwise (285 → 340 documents/s).
        words=fields.KEYWORD(scorable=True),
        snippet_src=fields.STORED(),
    )


class WhooshIndex:
    """A Whoosh index in a folder. Opening creates the folder and an empty index if needed.

    ``clock`` (monotonic seconds) measures the time budget of searches; tests pass a fake.
    """

    schema_version: int = SCHEMA_VERSION

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock = time.monotonic,
                 lock_timeout_s: float = 10.0) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock_timeout_s = lock_timeout_s
        self._schema = build_schema()
        self.path.mkdir(parents=True, exist_ok=True)
        # No mmap: see the module docstring (Whoosh copies mapped files into memory).
        self._storage = FileStorage(str(self.path), supports_mmap=False)
        # Idle searchers, reused until a commit changed the index: opening one reads every
        # segment's files, often more than the query itself. Closed when this object goes.
        self._pool_lock = threading.Lock()
        self._idle: list[tuple[Any, Any]] = []
        self._finalizer = weakref.finalize(self, _close_searchers, self._idle)
        self._columns = _ColumnCache()
        self._allowed = _AllowedCache()
        self._postings = _PostingsCache()
        if self._storage.index_exists():
            self._ix = self._storage.open_index(schema=None)
        else:
            self._ix = self._storage.create_index(self._schema)
            self._write_version()

    # --- schema version ---------------------------------------------------------------

    @property
    def stored_version(self) -> int | None:
        """The schema version the folder's index was built with (None if unknown)."""
        return self._stored()[0]

    @property
    def stored_layout(self) -> int | None:
        """The Whoosh layout the folder's index was built with (None if unknown; 1 for an
        index from before layouts were recorded)."""
        return self._stored()[1]

    def _stored(self) -> tuple[int | None, int | None]:
        try:
            lines = (self.path / VERSION_FILE).read_text(encoding="ascii").split()
            return int(lines[0]), int(lines[1]) if len(lines) > 1 else 1
        except (OSError, ValueError, IndexError):
            return None, None

    @property
    def needs_reindex(self) -> bool:
        """True when the index on disk was built by another schema version or layout."""
        return self._stored() != (SCHEMA_VERSION, LAYOUT_VERSION)

    def _write_version(self) -> None:
        # Write-then-rename so a crash never leaves a half-written marker.
        tmp = self.path / (VERSION_FILE + ".tmp")
        tmp.write_text(f"{SCHEMA_VERSION}\n{LAYOUT_VERSION}\n", encoding="ascii")
        os.replace(tmp, self.path / VERSION_FILE)

    def _require_current_schema(self) -> None:
        if self.needs_reindex:
            stored, layout = self._stored()
            raise SchemaMismatch(
                f"The search index in {self.path} was built with schema version "
                f"{stored or 'unknown'} (Whoosh layout {layout or 'unknown'}), this server "
                f"needs version {SCHEMA_VERSION} (layout {LAYOUT_VERSION}). Run "
                f"`etmf search reindex` to rebuild it."
            )

    # --- writing ------------------------------------------------------------------------

    def _writer(self, procs: int = 1) -> Any:
        """The index's writer, in-process, or with ``procs`` writer processes (a rebuild).

        Segments are written as separate files, not packed into one compound file: the
        index is read without mmap (see the module docstring), and a compound file is then
        read through a Python sub-file object, one seek and read per call, which the
        unpickling of every posting block's header calls about 27 times. Common words'
        first searches at 250,000 documents spent a fifth of their time there. Older
        compound segments stay readable and go as they are merged."""
        try:
            if procs > 1:
                return _ParallelWriter(self._ix, procs=procs, multisegment=True,
                                       batchsize=200, subargs=_SEGMENT_OPTIONS,
                                       timeout=self._lock_timeout_s, delay=0.05,
                                       **_SEGMENT_OPTIONS)
            return self._ix.writer(timeout=self._lock_timeout_s, delay=0.05,
                                   **_SEGMENT_OPTIONS)
        except LockError as exc:
            raise SearchUnavailable(
                f"The search index in {self.path} is locked by another writer and stayed "
                f"locked for {self._lock_timeout_s:g} s; try again shortly."
            ) from exc

    def index(self, docs: Iterable[SearchDoc]) -> int:
        """Insert or replace documents by id, all in one Whoosh commit."""
        self._require_current_schema()
        batch = unique_by_id(docs)
        if not batch:
            return 0
        writer = self._writer()
        try:
            # Deleting then adding is Whoosh's recommended batch form of update_document.
            _delete_ids(writer, (doc.document_id for doc in batch))
            for doc in batch:
                writer.add_document(**_fields_of(doc, writer.schema["body"].analyzer))
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        return len(batch)

    def index_new(self, batches: Iterable[Sequence[SearchDoc]],
                  progress: Callable[[int], None] = lambda _n: None) -> int:
        """A rebuild's writes, after :meth:`clear`: no deletions are looked for, and up to
        :data:`REBUILD_CHUNK` documents go in a commit, written by one process per core
        (Whoosh's ``MpWriter``) once there are more than :data:`PARALLEL_FROM`; fewer are
        written in-process. Committing every few hundred documents, as :meth:`index` does
        for live changes, rewrites the growing segments at each merge: 25 documents/s
        against 89 this way on two cores (``benchmarks/README.md``).

        Each commit's documents are counted in the index afterwards: a writer process that
        died leaves fewer, and the rebuild stops with :class:`SearchUnavailable` rather
        than finish with documents missing."""
        self._require_current_schema()
        docs = (doc for batch in _reported(batches, progress) for doc in batch)
        first = list(islice(docs, PARALLEL_FROM + 1))
        procs = (min(os.cpu_count() or 1, MAX_WRITER_PROCS) if len(first) > PARALLEL_FROM
                 else 1)
        rest = chain(first, docs)
        written = 0
        while (head := next(rest, None)) is not None:
            written += self._write_new(chain([head], islice(rest, REBUILD_CHUNK - 1)), procs)
        return written

    def _write_new(self, docs: Iterable[SearchDoc], procs: int) -> int:
        before = self._ix.doc_count_all()
        writer = self._writer(procs)
        count = 0
        try:
            analyzer = writer.schema["body"].analyzer
            for doc in docs:
                writer.add_document(**_fields_of(doc, analyzer))
                count += 1
            writer.commit()
        except BaseException:
            _stop_writer(writer)
            raise
        added = self._ix.doc_count_all() - before
        if added != count:
            raise SearchUnavailable(
                f"Only {added} of {count} documents reached the search index (a writer "
                "process failed); run `etmf search reindex` again.")
        return added

    def delete(self, document_ids: Iterable[int]) -> int:
        """Remove documents by id in one commit."""
        self._require_current_schema()
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            return 0
        writer = self._writer()
        try:
            _delete_ids(writer, ids)
        except BaseException:
            writer.cancel()
            raise
        writer.commit()
        return len(ids)

    def clear(self) -> None:
        """Replace the index with an empty one of the current schema."""
        writer = self._writer()  # hold the lock so no batch lands in the old index
        try:
            self._ix = self._storage.create_index(self._schema)
            self._write_version()
        finally:
            writer.cancel()

    # --- reading ------------------------------------------------------------------------

    def count(self) -> int:
        """Number of live documents."""
        return int(self._ix.doc_count())

    def generation(self) -> int:
        """The commit generation on disk: +1 per commit (observable proof of batching)."""
        return int(self._ix.latest_generation())

    def close(self) -> None:
        """Close the idle searchers (searches still running close theirs when done)."""
        with self._pool_lock:
            idle = list(self._idle)
            self._idle.clear()
        _close_searchers(idle)

    @contextmanager
    def _searcher(self) -> Iterator[Any]:
        """A searcher on the latest committed generation, for this search alone.

        Taken from the idle pool when one is still current; after a commit (by any process)
        the pooled ones are closed and a new one opened. Not ``Searcher.refresh()``: its
        reader reuse breaks when Whoosh retries a read that raced a commit (the retry reuses
        readers the first attempt closed, "Reader already closed"). After :meth:`clear` (a
        new index object) the old ones are replaced too.
        """
        searcher = None
        stale: list[tuple[Any, Any]] = []
        with self._pool_lock:
            while self._idle and searcher is None:
                ix, candidate = self._idle.pop()
                if ix is self._ix:
                    searcher = candidate
                else:
                    stale.append((ix, candidate))
        if searcher is not None and not _up_to_date(searcher):
            # A commit happened: every idle searcher is on an older generation too.
            stale.append((None, searcher))
            searcher = None
            with self._pool_lock:
                stale.extend(self._idle)
                self._idle.clear()
        _close_searchers(stale)
        ix = self._ix
        if searcher is None:
            searcher = ix.searcher()
        try:
            yield searcher
        except BaseException:
            # Do not keep a searcher that may be half-way through something.
            _close_searchers([(ix, searcher)])
            raise
        with self._pool_lock:
            if ix is self._ix and len(self._idle) < MAX_IDLE_SEARCHERS:
                self._idle.append((ix, searcher))
                return
        _close_searchers([(ix, searcher)])

    def after_rebuild(self) -> None:
        """Nothing to do: Whoosh keeps no planner statistics."""

    def warm(self) -> None:
        """Open a searcher and load every segment's facet and date values, its
        newest-first order and its facet combinations, as the first searches would: 4.5 s
        at 250,000 documents, past a search's 2 s bound."""
        with self._searcher() as searcher:
            for _start, _end, values in self._columns.segments(searcher):
                self._columns.newest_first(values)
                self._columns.combined(values)

    def health(self) -> None:
        """Raise :class:`SearchUnavailable` when the index cannot be read or is outdated."""
        self._require_current_schema()
        try:
            with self._ix.searcher() as searcher:
                searcher.doc_count()
        except Exception as exc:  # any failure to open means search is down
            raise SearchUnavailable(f"The search index in {self.path} cannot be read: {exc}") \
                from exc

    def describe(self) -> str:
        """Backend, location and schema, for logs and the admin page."""
        return f"Whoosh index at {self.path} (schema {SCHEMA_VERSION}, layout {LAYOUT_VERSION})"

    def search(self, query: SearchQuery) -> SearchResults:
        """Scoped, filtered, faceted search bounded by ``query.time_budget_s``."""
        self._require_current_schema()
        start = self._clock()
        if query.scope.is_empty:
            return SearchResults.empty()
        deadline = _Deadline(self._clock, start + query.time_budget_s)
        parsed = parse_query_text(query.text)
        with self._searcher() as searcher:
            if parsed.is_empty:
                matched, timed_out = _browse(searcher, query, deadline, self._allowed)
                groups = _per_segment(matched, self._columns.segments(searcher))
                hits, snippets_cut = _browse_hits(searcher, matched, groups, query,
                                                  self._columns)
            else:
                words = _text_query(parsed, searcher.schema, deadline)
                matched, timed_out = _matches(searcher, words, deadline, _restriction(query),
                                              self._allowed, self._postings,
                                              _is_narrow(query))
                groups = _per_segment(matched, self._columns.segments(searcher))
                ranked = _ranked(searcher, matched, groups, query, parsed, deadline,
                                 self._columns, self._allowed, self._postings)
                hits, snippets_cut = _hits(ranked, query, parsed, deadline)
            total = len(matched)
            facets = _facets(groups, self._columns, query.facet_values)
        elapsed_ms = (self._clock() - start) * 1000.0
        return SearchResults(hits, total, facets, timed_out or snippets_cut, elapsed_ms)


def _reported(batches: Iterable[Sequence[SearchDoc]], progress: Callable[[int], None]
              ) -> Iterator[Sequence[SearchDoc]]:
    for batch in batches:
        yield batch
        progress(len(batch))


class _ParallelWriter(MpWriter):  # type: ignore[misc]
    """Whoosh's ``MpWriter``, whose parent waits without end for room in the job queue:
    with every writer process dead (killed for memory, say) it would wait forever. Here it
    waits a second at a time and stops the rebuild once a writer process has died."""

    def _enqueue(self) -> None:
        filename = f"{random_name()}.doclist"
        with self.temp_storage().create_file(filename).raw_file() as f:
            for item in self.docbuffer:
                pickle.dump(item, f, 2)
        if len(self.tasks) < self.procs:
            self._new_task()
        job = (filename, len(self.docbuffer))
        self.docbuffer = []
        while True:
            self.require_alive()
            try:
                self.jobqueue.put(job, timeout=1.0)
                return
            except queue.Full:
                continue

    def commit(self, *args: Any, **kwargs: Any) -> None:
        self.require_alive()  # a dead process's documents would be missing from the commit
        super().commit(*args, **kwargs)

    def require_alive(self) -> None:
        dead = [task.exitcode for task in self.tasks if not task.is_alive()]
        if dead:
            raise SearchUnavailable(
                f"A search index writer process stopped (exit code {dead[0]}); run `etmf "
                "search reindex` again.")


def _stop_writer(writer: Any) -> None:
    """Cancel a writer; an ``MpWriter``'s processes are stopped too (its ``cancel`` only
    flags them in this process, and they would wait for work forever)."""
    for task in getattr(writer, "tasks", ()):
        task.terminate()
        task.join()
    with suppress(Exception):
        writer.cancel()


def _up_to_date(searcher: Any) -> bool:
    try:
        return bool(searcher.up_to_date())
    except Exception:  # unreadable generation: open afresh
        return False


def _close_searchers(pairs: list[tuple[Any, Any]]) -> None:
    for _ix, searcher in pairs:
        with suppress(Exception):
            searcher.close()
    pairs.clear()


def _delete_ids(writer: Any, document_ids: Iterable[int]) -> None:
    # One searcher for the whole batch: without it Whoosh opens one per deleted id.
    with writer.searcher() as searcher:
        for document_id in document_ids:
            writer.delete_by_term("doc_id", str(document_id), searcher=searcher)


# --- document → fields ---------------------------------------------------------------------


def _date_key(value: date | None) -> str:
    return f"{value.year:04d}{value.month:02d}{value.day:02d}" if value else NO_DATE


def _fields_of(doc: SearchDoc, analyzer: Any) -> dict[str, Any]:
    """The document's Whoosh fields; ``analyzer`` is the index's own for its text fields,
    used by the writer's thread alone (Whoosh's stemming cache is not thread-safe)."""
    body = clean_text(doc.text, MAX_INDEXED_TEXT_CHARS)
    title, artifact_name, meta = (clean_text(doc.title), clean_text(doc.artifact_name),
                                  metadata_text(doc))
    return {
        "doc_id": str(doc.document_id),
        "doc_num": doc.document_id,
        "study_id": str(doc.study_id),
        "site_key": str(doc.site_id) if doc.site_id is not None else NO_VALUE,
        "zone": clean_text(doc.zone),
        "artifact_id": clean_text(doc.artifact_id),
        "status": clean_text(doc.status),
        "year": str(doc.document_date.year) if doc.document_date else NO_VALUE,
        "date_key": _date_key(doc.document_date),
        "title": title,
        "artifact_name": artifact_name,
        "meta": meta,
        "body": body,
        "words": " ".join(sorted(_words_and_pairs((title, artifact_name, meta, body),
                                                  analyzer))),
        "snippet_src": body[:SNIPPET_SOURCE_CHARS],
    }


PAIR_JOIN = "+"  # never inside a word: words are runs of letters, digits, "_" and "."
PAIR_JOIN_BYTES = PAIR_JOIN.encode()


def _words_and_pairs(texts: Iterable[str], analyzer: Any) -> set[str]:
    """The words of ``texts`` as the text fields' ``analyzer`` sees them (stemmed, stop
    words and one-letter words left out and not counted), and the pairs of words standing
    together in one of them, joined."""
    found: set[str] = set()
    for text in texts:
        previous = None
        for token in analyzer(text):
            word = token.text
            found.add(word)
            if previous is not None:
                found.add(previous + PAIR_JOIN + word)
            previous = word
    return found


# --- the time bound --------------------------------------------------------------------------


class _Deadline:
    """Raises Whoosh's ``TimeLimit`` once the injected clock passes the deadline."""

    def __init__(self, clock: Clock, at: float) -> None:
        self._clock = clock
        self.at = at

    def passed(self) -> bool:
        return self._clock() >= self.at

    def check(self) -> None:
        if self._clock() >= self.at:
            raise TimeLimit()


class _DeadlineMatcher(matching.WrappingMatcher):  # type: ignore[misc]
    """A term matcher that checks the deadline whenever it moves: phrase matching steps
    through many candidates of common words without yielding a match in between."""

    def __init__(self, child: Any, deadline: _Deadline, boost: float = 1.0) -> None:
        super().__init__(child, boost=boost)
        self._deadline = deadline

    def copy(self) -> _DeadlineMatcher:
        return _DeadlineMatcher(self.child.copy(), self._deadline, self.boost)

    def _replacement(self, newchild: Any) -> _DeadlineMatcher:
        return _DeadlineMatcher(newchild, self._deadline, self.boost)

    def next(self) -> Any:
        self._deadline.check()
        return self.child.next()

    def skip_to(self, id: int) -> Any:  # noqa: A002 - Whoosh's parameter name
        self._deadline.check()
        return self.child.skip_to(id)


class _DeadlineTerm(wq.Term):  # type: ignore[misc]
    def __init__(self, fieldname: str, text: Any, deadline: _Deadline) -> None:
        super().__init__(fieldname, text)
        self._deadline = deadline

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        inner = super().matcher(searcher, context)
        if isinstance(inner, matching.NullMatcherClass):
            return inner
        return _DeadlineMatcher(inner, self._deadline)


class _DeadlinePhrase(wq.Phrase):  # type: ignore[misc]
    """Whoosh's ``Phrase`` with deadline-checking term matchers underneath."""

    def __init__(self, phrase: Any, deadline: _Deadline) -> None:
        super().__init__(phrase.fieldname, phrase.words, slop=phrase.slop, boost=phrase.boost,
                         char_ranges=phrase.char_ranges)
        self._deadline = deadline

    def matcher(self, searcher: Any, context: Any = None) -> Any:
        schema_field = searcher.schema[self.fieldname]
        reader = searcher.reader()
        terms = []
        for word in self.words:
            btext = schema_field.to_bytes(word)
            if (self.fieldname, btext) not in reader:
                return matching.NullMatcher()
            terms.append(_DeadlineTerm(self.fieldname, btext, self._deadline))
        spans = wq.SpanNear2(terms, slop=self.slop, ordered=True, mindist=1)
        found = spans.matcher(searcher, context)
        if self.boost != 1.0:
            found = matching.WrappingMatcher(found, boost=self.boost)
        return found


# --- building the query ----------------------------------------------------------------------


# Restrictions decide WHICH documents match, not how they rank, so they weigh next to
# nothing. Not zero: Whoosh's quality optimisations drop sub-queries that cannot score.
_RESTRICTION_BOOST = 1e-6


def _any_term(fieldname: str, values: Iterable[str]) -> wq.Query:
    return wq.Or([wq.Term(fieldname, v, boost=_RESTRICTION_BOOST) for v in sorted(values)])


def _scope_query(query: SearchQuery) -> wq.Query:
    per_study: list[wq.Query] = []
    for study_id, sites in sorted(query.scope.studies.items()):
        study = wq.Term("study_id", str(study_id), boost=_RESTRICTION_BOOST)
        if sites is None:
            per_study.append(study)
        else:
            # Trial- and country-level documents (no site) belong to every site's view.
            site_keys = {str(s) for s in sites} | {NO_VALUE}
            per_study.append(wq.And([study, _any_term("site_key", site_keys)]))
    return wq.Or(per_study)


def _restriction(query: SearchQuery) -> wq.Query:
    """Scope and filters as one query, so totals and facets only count what may be seen."""
    parts: list[wq.Query] = [_scope_query(query)]
    if query.zones is not None:
        parts.append(_any_term("zone", query.zones))
    if query.artifact_ids is not None:
        parts.append(_any_term("artifact_id", query.artifact_ids))
    if query.site_ids is not None:
        parts.append(_any_term("site_key", {str(s) for s in query.site_ids}))
    if query.statuses is not None:
        parts.append(_any_term("status", query.statuses))
    if query.date_from is not None or query.date_to is not None:
        # The lowest real key is above NO_DATE: a date filter never matches undated documents.
        low = _date_key(query.date_from) if query.date_from else "00010101"
        high = _date_key(query.date_to) if query.date_to else "99991231"
        parts.append(wq.TermRange("date_key", low, high, boost=_RESTRICTION_BOOST))
    return wq.And(parts)


def _text_query(parsed: ParsedText, schema: fields.Schema, deadline: _Deadline | None,
                fieldnames: tuple[str, ...] = TEXT_FIELDS) -> wq.Query:
    """The words on ``fieldnames``. With a ``deadline`` (to match), words sought in every
    text field and phrases' pairs are asked of the ``words`` field (:func:`_for_matching`)
    and phrases check the deadline as they step; without (to score a capped set of
    candidates, which must finish even after the deadline), it is Whoosh's query over the
    text fields alone, so the ``words`` field never weighs in a score."""
    parser = MultifieldParser(fieldnames, schema, fieldboosts=FIELD_BOOSTS)
    parts: list[wq.Query] = []
    text = parsed.websearch_text()
    if text:
        parsed_text = parser.parse(text)
        parts.append(parsed_text if deadline is None else _for_matching(parsed_text))
    for prefix in parsed.prefixes:
        if deadline is not None and fieldnames == TEXT_FIELDS:
            parts.append(_WordPrefix(WORDS_FIELD, prefix))
        else:
            parts.append(wq.Or([wq.Prefix(f, prefix, boost=FIELD_BOOSTS[f])
                                for f in fieldnames]))

    def with_deadline(q: wq.Query) -> wq.Query:
        if isinstance(q, wq.Phrase) and deadline is not None:
            return _DeadlinePhrase(q, deadline)
        if isinstance(q, wq.Or):
            # Whoosh preloads OR-ed matches of small indexes in one go, which would do all
            # the phrase work before the first deadline check; stream them instead.
            q.matcher_type = wq.Or.DEFAULT_MATCHER
        return q

    return wq.And(parts).accept(with_deadline)


def _for_matching(q: wq.Query) -> wq.Query:
    """The query as matching asks it of the ``words`` field, to the same documents.

    A word sought in every text field is one term of the ``words`` field, which holds each
    word of a document once: one posting list without word positions instead of four
    with (Whoosh unpickles a block's positions to read its document numbers at all). A
    two-word phrase over every text field is exactly its pair; any other phrase must hold
    all its pairs as well, which lets Whoosh leap to the few documents worth checking word
    positions in. A phrase of common words read positions in most documents (1.3 s at
    250,000 documents); its pair is in a few percent of them."""
    if type(q) is wq.Or and q.subqueries:
        subs = q.subqueries
        if {sub.fieldname for sub in subs if hasattr(sub, "fieldname")} == set(TEXT_FIELDS):
            if all(type(sub) is wq.Term for sub in subs) and len({s.text for s in subs}) == 1:
                return wq.Term(WORDS_FIELD, subs[0].text)
            if all(_is_pair_phrase(sub) for sub in subs):
                words = {tuple(sub.words) for sub in subs}
                if len(words) == 1:
                    first, second = words.pop()
                    return wq.Term(WORDS_FIELD, first + PAIR_JOIN + second)
    if type(q) is wq.Phrase and q.slop == 1 and len(q.words) > 1:
        return wq.And([*(wq.Term(WORDS_FIELD, a + PAIR_JOIN + b)
                         for a, b in pairwise(q.words)), q])
    return q.apply(_for_matching)


class _WordPrefix(wq.Prefix):  # type: ignore[misc]
    """A prefix over the ``words`` field: its words, not the pairs they begin (as many as
    the words again; the documents would be the same, the terms to read many more)."""

    def _btexts(self, ixreader: Any) -> Iterator[bytes]:
        return (btext for btext in super()._btexts(ixreader)
                if PAIR_JOIN_BYTES not in btext)


def _is_pair_phrase(q: wq.Query) -> bool:
    return type(q) is wq.Phrase and q.slop == 1 and len(q.words) == 2


#: Matches ranked by the full query when there are more (see :func:`_ranked`): the newest
#: this many, and the newest this many of those matching in the title or artifact name.
RANK_CANDIDATES = 200
_HEAD_FIELDS = ("title", "artifact_name")


class _KeptPerSegment:
    """Values worked out from a segment's files, kept by key (which starts with the
    segment's id), the least recently used dropped beyond :data:`MAX_BYTES`. A segment's
    files never change after its commit: only its documents get deleted, which lowers its
    live count. Segments merged away leave entries that age out."""

    MAX_BYTES = 32 * 1024 * 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple[Any, ...], bytes | array[int]] = OrderedDict()
        self._bytes = 0

    def _kept(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """The value for ``key``, made now if not kept (an exception from ``make``, such as
        a deadline's ``TimeLimit``, leaves nothing half-made behind)."""
        found = self._get(key)
        if found is None:
            found = make()
            self._put(key, found)
        return found

    def _get(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def _put(self, key: tuple[Any, ...], value: bytes | array[int]) -> None:
        with self._lock:
            if key not in self._entries:
                self._entries[key] = value
                self._bytes += memoryview(value).nbytes
            while self._bytes > self.MAX_BYTES and len(self._entries) > 1:
                _key, dropped = self._entries.popitem(last=False)
                self._bytes -= memoryview(dropped).nbytes


def _segment_id(subsearcher: Any) -> str | None:
    reader = subsearcher.reader()
    segment = reader.segment() if hasattr(reader, "segment") else None
    return None if segment is None else str(segment.segment_id())


class _AllowedCache(_KeptPerSegment):
    """The documents of a segment that a restriction (scope and filters) lets through, as
    one byte per document of the segment (1: allowed; deleted documents never are), kept
    per (segment, its live count, restriction).

    Matching the words through the restriction's matchers cost more than the words
    themselves (every match stepped the scope's and each filter's postings); a set is
    checked by indexing a byte string. Deleting documents lowers the segment's live count
    and so makes a new key; the same few restrictions come back all the time (a role's
    scope, a status filter). Bytes rather than a set of numbers: 250,000 documents take
    250 KB, not ~10 MB (date ranges make new keys)."""

    def allowed(self, subsearcher: Any, restriction: wq.Query, check: Callable[[], None]
                ) -> bytes:
        """The flags, kept or worked out now (``check`` between documents)."""
        segment_id = _segment_id(subsearcher)
        if segment_id is None:  # not a segment's own reader: nothing to key on
            return self._flags_of(subsearcher, restriction, check)
        key = (segment_id, subsearcher.reader().doc_count(), repr(restriction))
        return self._kept(key, lambda: self._flags_of(subsearcher, restriction, check))

    @staticmethod
    def _flags_of(subsearcher: Any, restriction: wq.Query, check: Callable[[], None]
                  ) -> bytes:
        return bytes(_flags(subsearcher, restriction.docs(subsearcher), check))


def _flags(subsearcher: Any, docnums: Iterable[int], check: Callable[[], None]) -> bytearray:
    """One byte per document of the segment: 1 for ``docnums``."""
    flags = bytearray(subsearcher.doc_count_all())
    for docnum in docnums:
        check()
        flags[docnum] = 1
    return flags


def _no_check() -> None:
    """A deadline check that never stops anything."""


def _allowed(subsearcher: Any, restriction: wq.Query, narrow: bool, cache: _AllowedCache,
             check: Callable[[], None]) -> bytes | bytearray:
    """The restriction's flags in a segment. A narrow one's (one site, an artifact: a few
    hundred documents) are found afresh by leaping through its matcher, and take no place
    in the cache; listing every document of the scope to intersect it with them made
    browsing one site 74 ms at 250,000 documents (25 ms now). A broad one's are kept
    (:class:`_AllowedCache`)."""
    if narrow:
        return _flags(subsearcher, _stepped(restriction, subsearcher, _no_check), check)
    return cache.allowed(subsearcher, restriction, check)


class _PostingsCache(_KeptPerSegment):
    """A common term's docnums in a segment, deleted documents included, kept per
    (segment, field, term): reading them means unpickling and decompressing every posting
    block (~150 ms for a word in 160,000 of 250,000 documents from the text fields, whose
    blocks carry word positions too; less from the ``words`` field), while
    the same common words come back search after search. Only lists of at least
    :data:`KEEP_FROM` documents are kept; shorter ones are a block or a few to read. A word
    in 170,000 documents takes ~650 KB over its fields: 64 MB keep about a hundred."""

    MAX_BYTES = 64 * 1024 * 1024
    KEEP_FROM = 1024

    def ids(self, subsearcher: Any, fieldname: str, text: str | bytes,
            check: Callable[[], None]) -> Sequence[int]:
        segment_id = _segment_id(subsearcher)
        if segment_id is None:
            return _term_docs(subsearcher, fieldname, text, check)
        btext = subsearcher.schema[fieldname].to_bytes(text)
        key = (segment_id, fieldname, btext)
        found = self._get(key)
        if found is not None:
            return found  # type: ignore[no-any-return]
        docs = _term_docs(subsearcher, fieldname, btext, check)
        if len(docs) >= self.KEEP_FROM:
            self._put(key, array("i", docs))
        return docs


def _is_narrow(query: SearchQuery) -> bool:
    """Whether the restriction lets through a small part of a study (one site, one
    artifact, a site-limited role): then matching it with the words, which leaps from one
    allowed document to the next, beats stepping through every word match."""
    return (query.site_ids is not None or query.artifact_ids is not None
            or any(sites is not None for sites in query.scope.studies.values()))


def _matches(searcher: Any, words: wq.Query, deadline: _Deadline,
             restriction: wq.Query | None, cache: _AllowedCache, postings: _PostingsCache,
             narrow: bool = False) -> tuple[set[int], bool]:
    """Every document (global docnum) the words match and the restriction (None: none)
    allows, unscored, until done or out of time (then what was found so far, and True).

    The words' documents are checked against the restriction's flags (:func:`_allowed`),
    which also leave out deleted documents. Words, prefixes and two-word phrases
    are worked out as sets from whole posting blocks (:func:`_word_docs`), a segment at a
    time; other phrases are streamed from Whoosh's matcher, a document at a time, and with a
    narrow restriction stepped together with it."""
    matched: set[int] = set()
    check = deadline.check
    by_sets = _set_algebra(words)
    try:
        for subsearcher, offset in searcher.leaf_searchers():
            check()
            if narrow and restriction is not None and not by_sets:
                matched.update(d + offset for d in _stepped(wq.And([words, restriction]),
                                                            subsearcher, check))
                continue
            # Building a broad restriction's flags is not cut short here (it is kept).
            allowed = _allowed(subsearcher, restriction or wq.Every(),
                               narrow and restriction is not None, cache,
                               check if narrow else _no_check)
            if by_sets:
                matched.update([d + offset
                                for d in _word_docs(words, subsearcher, postings, check)
                                if allowed[d]])
                continue
            # Phrases: streamed, so what was found before the deadline is kept.
            for docnum in words.docs(subsearcher):
                check()
                if allowed[docnum]:
                    matched.add(docnum + offset)
    except TimeLimit:
        return matched, True
    return matched, False


def _set_algebra(q: wq.Query) -> bool:
    """Whether :func:`_word_docs` works the query out without Whoosh's matchers."""
    kind = type(q)
    if kind in (wq.Or, wq.And):
        return all(_set_algebra(sub) for sub in q.subqueries)
    return kind in (wq.Term, wq.Prefix, _WordPrefix) or q is wq.NullQuery


def _word_docs(q: wq.Query, subsearcher: Any, postings: _PostingsCache,
               check: Callable[[], None]) -> Sequence[int]:
    """The segment's docnums the words match, in no particular order, deleted documents
    included (the caller's flags leave them out): terms from their posting blocks, ORs and
    ANDs as set unions and intersections, prefixes as the OR of their terms. Whoosh's union
    matcher instead steps every field's postings one document at a time, three quarters of
    a common word's search at 250,000 documents."""
    kind = type(q)
    if kind is wq.Term:
        return postings.ids(subsearcher, q.fieldname, q.text, check)
    if kind is wq.Or:
        union: set[int] = set()
        for sub in q.subqueries:
            union.update(_word_docs(sub, subsearcher, postings, check))
        return list(union)
    if kind is wq.And and q.subqueries:
        parts = sorted((_word_docs(sub, subsearcher, postings, check)
                        for sub in q.subqueries), key=len)
        common = set(parts[0])
        for part in parts[1:]:
            common.intersection_update(part)
        return list(common)
    if kind in (wq.Prefix, _WordPrefix):
        return _word_docs(q.simplify(subsearcher.reader()), subsearcher, postings, check)
    return []  # NullQuery, the only other query :func:`_set_algebra` lets through


def _term_docs(subsearcher: Any, fieldname: str, text: str | bytes,
               check: Callable[[], None]) -> list[int]:
    """A term's docnums in a segment, deleted documents included, a block at a time.

    Whoosh has no public way to read a posting block whole; its codec's leaf matcher keeps
    the block's ids in ``_ids`` and moves on with ``_next_block`` (Whoosh 2.7.4, the last
    release). Any other matcher is stepped through its public ``all_ids``."""
    reader = subsearcher.reader()
    try:
        postings = reader.postings(fieldname, text)
    except TermNotFound:
        return []
    # Deleted documents come wrapped in a filter; the caller's flags do that job.
    leaf = postings.child if type(postings) is FilterMatcher else postings
    if type(leaf) is not W3LeafMatcher:
        return list(postings.all_ids())
    found: list[int] = []
    while leaf.is_active():
        check()
        leaf.id()  # reads the block's ids
        found.extend(leaf._ids)
        leaf._next_block()
    return found


def _stepped(query: wq.Query, subsearcher: Any, check: Callable[[], None]) -> Iterator[int]:
    """The query's docnums in a segment by stepping its matcher: an intersection then leaps
    from match to match (``Query.docs`` lists every id of each side first)."""
    matcher = query.matcher(subsearcher, subsearcher.boolean_context())
    while matcher.is_active():
        check()
        yield matcher.id()
        matcher.next()


def _ranked(searcher: Any, matched: set[int], groups: list[_Group], query: SearchQuery,
            parsed: ParsedText, deadline: _Deadline, columns: _ColumnCache,
            allowed: _AllowedCache, postings: _PostingsCache) -> Any:
    """The matches scored by the words (BM25F, title weighing most), best first, as Whoosh
    results for highlighting.

    Scoring every match of a common word cost most of a search (thousands of documents,
    each through the fields' matchers in Python), so beyond :data:`RANK_CANDIDATES` only
    capped candidates are scored, as the PostgreSQL backend does: the newest matches and
    the newest of those matching in the title or artifact name. With no more matches than
    the cap every one is scored and the ranking is exact. Scoring is not cut by the
    deadline: what was found before it is still ranked (a capped amount of work)."""
    words = _text_query(parsed, searcher.schema, None)
    cap = max(RANK_CANDIDATES, query.offset + query.limit)
    candidates = matched
    if len(matched) > cap:
        candidates = set(_newest(matched, groups, cap, columns))
        if not deadline.passed():
            head_words = _text_query(parsed, searcher.schema, deadline, _HEAD_FIELDS)
            head, _cut = _matches(searcher, head_words, deadline, None, allowed, postings)
            both = matched & head
            candidates |= set(_newest(both, _per_segment(both, columns.segments(searcher)),
                                      cap, columns))
    scored = _scores(searcher, words, candidates)
    scored.sort(key=lambda pair: (-pair[0], pair[1]))
    return Results(searcher, words, scored)


def _newest(docnums: set[int], groups: list[_Group], most: int, columns: _ColumnCache
            ) -> list[int]:
    """The ``most`` newest of ``docnums`` (``groups``: the same, by segment), newest
    first: by document date (undated last), then highest document number.

    Where a segment's matches are many, its documents are walked newest first (an order
    kept per segment) until ``most`` of them are matches: for a common word that is a few
    hundred steps instead of a sort key for each of 175,000 matches. Few matches are keyed
    and compared directly."""
    keyed: list[tuple[str, int, int]] = []
    for start, local, values in groups:
        dates, numbers = values["date_key"], values["doc_num"]
        size = len(dates)
        if len(local) * len(local) * 8 > most * size:  # a walk of ~most*size/len(local)
            picked = []
            for d in columns.newest_first(values):
                if start + d in docnums:
                    picked.append(d)
                    if len(picked) == most:
                        break
            local = picked
        keyed.extend((dates[d], numbers[d], start + d) for d in local)
    return [docnum for _date, _number, docnum in heapq.nlargest(most, keyed)]


def _scores(searcher: Any, words: wq.Query, docnums: set[int]) -> list[tuple[float, int]]:
    """(score, global docnum) of each of ``docnums``, from the matcher a collector would
    use, moved to each document in turn rather than stepped through every match."""
    context = searcher.context()
    ordered = sorted(docnums)
    scored: list[tuple[float, int]] = []
    for subsearcher, offset in searcher.leaf_searchers():
        end = offset + subsearcher.doc_count_all()
        local = [d - offset for d in ordered[bisect_left(ordered, offset):
                                             bisect_left(ordered, end)]]
        if not local:
            continue
        matcher = words.matcher(subsearcher, context)
        for docnum in local:
            if not matcher.is_active():
                break
            if matcher.id() < docnum:
                matcher.skip_to(docnum)
                if not matcher.is_active():
                    break
            if matcher.id() == docnum:
                scored.append((float(matcher.score()), docnum + offset))
    return scored


def _browse(searcher: Any, query: SearchQuery, deadline: _Deadline, cache: _AllowedCache
            ) -> tuple[set[int], bool]:
    """Browsing (no words): every document in scope (global docnums), from the
    restriction's flags (:func:`_allowed`), until done or out of time; the caller orders
    them by date. Facets are counted afterwards from the matched documents (:func:`_facets`)."""
    restriction = _restriction(query)
    narrow = _is_narrow(query)
    matched: set[int] = set()
    try:
        for subsearcher, offset in searcher.leaf_searchers():
            deadline.check()
            flags = _allowed(subsearcher, restriction, narrow, cache, deadline.check)
            matched.update(compress(range(offset, offset + len(flags)), flags))
    except TimeLimit:
        return matched, True
    return matched, False


# --- per-segment column values ---------------------------------------------------------------


class _ColumnCache:
    """Column values (facet fields, date, number) per segment, loaded once per segment.

    A segment's documents and their column values never change after its commit (deleting
    only marks documents deleted, and deleted documents never match), so the values are
    keyed by segment id, shared by every searcher, and dropped for segments that merged
    away. Loading reads the column file once; looking values up is a list index."""

    FIELDS = (*FACET_FIELDS.values(), "date_key", "doc_num")
    NEWEST_FIRST = "newest first"
    #: Facets with few values a study (a few thousand combinations in all), counted as one.
    COMBINED = ("zone", "artifact", "status", "year")
    COMBINED_KEY = "combined facets"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_segment: dict[str, dict[str, list[Any]]] = {}
        #: One object per distinct value (a few thousand sites, dates, artifacts): Whoosh
        #: decodes a new string for every document, 131 MB a worker at 250,000 documents.
        self._shared: dict[Any, Any] = {}
        #: Every combination of the :data:`COMBINED` facets' values seen, numbered.
        self._codes: dict[tuple[Any, ...], int] = {}
        self._combos: list[tuple[Any, ...]] = []

    def _read(self, reader: Any, name: str) -> list[Any]:
        column = reader.column_reader(name)
        if name == "doc_num":  # unique to each document: nothing to share
            return list(column)
        shared = self._shared
        return [shared.setdefault(value, value) for value in column]

    def combined(self, values: dict[str, Any]) -> list[int]:
        """A segment's documents as one number each for their values of the facets in
        :data:`COMBINED` (:meth:`combination` turns it back), worked out once: counting one
        number a match costs a fifth of counting four values."""
        found = values.get(self.COMBINED_KEY)
        if found is None:
            columns = [values[FACET_FIELDS[name]] for name in self.COMBINED]
            with self._lock:
                codes = self._codes
                found = [codes.setdefault(combo, len(codes))
                         for combo in zip(*columns, strict=True)]
                self._combos = list(codes)
            values[self.COMBINED_KEY] = found
        return found  # type: ignore[no-any-return]

    def combination(self, code: int) -> tuple[Any, ...]:
        """The values (in :data:`COMBINED` order) that ``code`` stands for."""
        return self._combos[code]

    def newest_first(self, values: dict[str, Any]) -> array[int]:
        """A segment's docnums, newest first (date, then document number), from its
        ``values``; worked out once (250,000 documents: ~0.2 s and 1 MB)."""
        order = values.get(self.NEWEST_FIRST)
        if order is None:
            dates, numbers = values["date_key"], values["doc_num"]
            order = array("i", sorted(range(len(dates)), key=lambda d: (dates[d], numbers[d]),
                                      reverse=True))
            values[self.NEWEST_FIRST] = order
        return order

    def segments(self, searcher: Any) -> list[tuple[int, int, dict[str, list[Any]]]]:
        """(first global docnum, end, values by field) for each segment of ``searcher``."""
        found = []
        live: set[str] = set()
        for reader, offset in searcher.reader().leaf_readers():
            if reader.doc_count_all() == 0:
                continue
            segment_id = reader.segment().segment_id()
            live.add(segment_id)
            with self._lock:
                values = self._by_segment.get(segment_id)
            if values is None:
                values = {name: self._read(reader, name) for name in self.FIELDS}
                with self._lock:
                    self._by_segment[segment_id] = values
            found.append((offset, offset + reader.doc_count_all(), values))
        with self._lock:
            if len(self._by_segment) > len(live):
                # Segments merged away after a commit; searchers on older generations
                # reload what they still need.
                for segment_id in set(self._by_segment) - live:
                    del self._by_segment[segment_id]
        return found


#: A segment's first docnum, the matched docnums as positions within it, its values.
_Group = tuple[int, list[int], dict[str, Any]]


def _per_segment(docnums: Iterable[int], segments: list[tuple[int, int, dict[str, list[Any]]]]
                 ) -> list[_Group]:
    """The matched documents by segment, worked out once a search for the candidates,
    the browse order and the facets (1–3 ms of a kept common word's ~80 ms)."""
    ordered = sorted(docnums)
    groups = []
    for start, end, values in segments:
        low, high = bisect_left(ordered, start), bisect_left(ordered, end)
        if low < high:
            groups.append((start, [d - start for d in ordered[low:high]], values))
    return groups


# --- shaping the results ---------------------------------------------------------------------


class _EscapingFormatter(highlight.Formatter):  # type: ignore[misc]
    """Whoosh's HtmlFormatter does not escape the text around matches; this one does."""

    between = " … "

    def _text(self, text: str) -> str:
        return html.escape(text)

    def format_token(self, text: str, token: Any, replace: bool = False) -> str:
        return "<mark>" + html.escape(highlight.get_text(text, token, replace)) + "</mark>"


_SNIPPETS = highlight.Highlighter(
    fragmenter=highlight.ContextFragmenter(maxchars=120, surround=50),
    formatter=_EscapingFormatter(),
)
_TITLES = highlight.Highlighter(fragmenter=highlight.WholeFragmenter(),
                                formatter=_EscapingFormatter())


def _snippet_window(source: str, parsed: ParsedText) -> str:
    """The part of ``source`` around the earliest occurrence of a query word's first
    letters (:func:`~etmf.search.base.snippet_probes`); the whole source when it is short
    or nothing is found. The caller falls back to the whole source when the window holds
    no match after all."""
    if len(source) <= 2 * SNIPPET_WINDOW_CHARS:
        return source
    lowered = source.lower()
    found = [at for at in (lowered.find(p) for p in snippet_probes(parsed)) if at >= 0]
    if not found:
        return source
    start = max(min(found) - SNIPPET_WINDOW_CHARS // 4, 0)
    return source[start:start + SNIPPET_WINDOW_CHARS]


def _hits(results: Any, query: SearchQuery, parsed: ParsedText,
          deadline: _Deadline) -> tuple[list[Hit], bool]:
    """The requested page; snippets are highlighted while time remains, plain after."""
    hits: list[Hit] = []
    cut = False
    for hit in results[query.offset:query.offset + query.limit]:
        stored = hit.fields()
        title = stored.get("title", "")
        source = stored.get("snippet_src", "")
        snippet = title_html = ""
        if not parsed.is_empty and not deadline.passed():
            window = _snippet_window(source, parsed)
            snippet = _SNIPPETS.highlight_hit(hit, "body", text=window, top=2)
            if window is not source and "<mark>" not in snippet and not deadline.passed():
                snippet = _SNIPPETS.highlight_hit(hit, "body", text=source, top=2)
            title_html = _TITLES.highlight_hit(hit, "title", text=title, top=1)
        elif not parsed.is_empty:
            cut = True
        score = 0.0 if parsed.is_empty else float(hit.score or 0.0)
        hits.append(Hit(
            document_id=int(stored["doc_id"]),
            score=score,
            title=title,
            snippet_html=snippet or fallback_snippet(source),
            title_html=title_html or html.escape(title),
        ))
    return hits, cut


def _browse_hits(searcher: Any, matched: set[int], groups: list[_Group], query: SearchQuery,
                 cache: _ColumnCache) -> tuple[list[Hit], bool]:
    """Browsing: newest document date first (undated last), then highest document number;
    stored fields are read for the page only."""
    hits = []
    for docnum in _newest(matched, groups, query.offset + query.limit, cache)[query.offset:]:
        stored = searcher.stored_fields(docnum)
        title = stored.get("title", "")
        hits.append(Hit(document_id=int(stored["doc_id"]), score=0.0, title=title,
                        snippet_html=fallback_snippet(stored.get("snippet_src", "")),
                        title_html=html.escape(title)))
    return hits, False


def _facets(groups: list[_Group], cache: _ColumnCache, most: int | None
            ) -> dict[str, dict[str, int]]:
    """Counts per value of each facet field over the matched documents (the ``most``
    largest of each, or all): sites one by one, the other facets as their combinations."""
    counts = {name: Counter[Any]() for name in FACET_FIELDS}
    combined = Counter[int]()
    separate = [(counts[name], fieldname) for name, fieldname in FACET_FIELDS.items()
                if name not in _ColumnCache.COMBINED]
    for _start, local, values in groups:
        for counter, fieldname in separate:
            counter.update(map(values[fieldname].__getitem__, local))
        combined.update(map(cache.combined(values).__getitem__, local))
    together = [counts[name] for name in _ColumnCache.COMBINED]
    for code, n in combined.items():
        for counter, value in zip(together, cache.combination(code), strict=True):
            counter[value] += n
    return {name: largest_values({str(k): int(v) for k, v in counted.items()
                                  if k not in (NO_VALUE, None)}, most)
            for name, counted in counts.items()}
