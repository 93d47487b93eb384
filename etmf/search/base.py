"""The search contract: what is indexed, how a query is asked, what comes back.

Two implementations honour it: :class:`etmf.search.whoosh_index.WhooshIndex` (embedded
default, a folder in the instance) and :class:`etmf.search.postgres_index.PostgresIndex`
(production, shared by every app server). ``tests/integration/search/test_search_contract.py``
runs the same tests against both.

Contract, in short:

* ``index(docs)`` is an upsert by ``document_id``, written in ONE commit per call. Callers on
  the request path never call it directly: they hand documents to
  :class:`etmf.search.indexer.BatchingIndexer`, which batches.
* ``search(query)`` applies the permission scope and the filters inside the query, so hits,
  totals and facets never count documents the user may not see. An empty scope matches
  nothing (deny by default).
* Every search is bounded by ``query.time_budget_s``. Running out of time is not an error: the
  result carries what was found so far and ``timed_out=True`` so the page can say so.
* Snippets and highlighted titles are safe HTML: all document text is escaped, the only markup
  is ``<mark>…</mark>`` around matches. ``Hit.title`` is the raw title for auto-escaping
  templates.
* User query syntax is small and never raises: words (all must match), ``"quoted phrases"``
  and a trailing ``*`` for a prefix (at least three characters). Everything else is ignored.
  A query with no usable words browses: every document in scope that passes the filters,
  newest document date first.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol, runtime_checkable

#: Bump when what is indexed or how it is analysed changes; an index written under another
#: version must be rebuilt with ``etmf search reindex``.
SCHEMA_VERSION = 1

#: Extracted text beyond this many characters is not indexed (a 1,000-page PDF of prose is
#: about 2-3 million characters; its first million still finds it). Keeps one document from
#: costing seconds of indexing and megabytes of index.
MAX_INDEXED_TEXT_CHARS = 1_000_000

#: Snippets are cut from this prefix of the text. Highlighting re-reads the text, so a bound
#: keeps result pages fast; a word found only further in gives a snippet of the opening.
SNIPPET_SOURCE_CHARS = 50_000

#: Length of the plain opening shown when there is nothing to highlight.
SNIPPET_FALLBACK_CHARS = 200

#: Highlighting re-analyses all the text it is given (PostgreSQL's ``ts_headline`` parses and
#: stems every word: about half a millisecond for 2,400 characters), the dominant cost of a
#: page of results: a text longer than twice this is highlighted in a window of this many
#: characters around the earliest likely match (see :func:`snippet_probes`).
SNIPPET_WINDOW_CHARS = 600

#: Letters of each query word looked for to place the snippet window: a stem can differ from
#: the word at its end ("studies", "study"), rarely in its first four letters.
SNIPPET_PROBE_CHARS = 4

#: Query text is cut to this length and to this many terms before parsing.
MAX_QUERY_CHARS = 1_000
MAX_QUERY_TERMS = 32

#: A prefix shorter than this would expand to a large part of the vocabulary.
MIN_PREFIX_CHARS = 3

MAX_LIMIT = 100
MAX_OFFSET = 10_000
MAX_TIME_BUDGET_S = 30.0

FACET_NAMES = ("zone", "artifact", "site", "status", "year")

MARK_OPEN = "<mark>"
MARK_CLOSE = "</mark>"


class SearchError(Exception):
    """A search or indexing request could not be carried out."""


class SearchUnavailable(SearchError):
    """The search backend cannot be reached or used right now (down, locked, not set up)."""


class SchemaMismatch(SearchUnavailable):
    """The index on disk / in the database was built by another schema version."""


@dataclass(frozen=True)
class SearchDoc:
    """One document version as the search index sees it.

    ``text`` is the extracted content; only its first :data:`MAX_INDEXED_TEXT_CHARS`
    characters are indexed, and control characters are dropped.
    """

    document_id: int
    study_id: int
    country: str | None
    site_id: int | None
    zone: str
    section: str
    artifact_id: str
    artifact_name: str
    title: str
    status: str
    document_date: date | None
    person: str | None
    language: str | None
    version_label: str
    text: str


@dataclass(frozen=True)
class Scope:
    """What the asking user may see.

    ``studies`` maps a study id to ``None`` (the whole study) or to a set of site ids: then
    only documents of those sites plus documents with no site (trial and country level).
    An empty mapping sees nothing.
    """

    studies: Mapping[int, frozenset[int] | None] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        """True when the scope cannot match any document."""
        return not self.studies


@dataclass(frozen=True)
class SearchQuery:
    """A search request. Out-of-range paging and budgets are clamped, never refused."""

    text: str
    scope: Scope
    zones: frozenset[str] | None = None
    artifact_ids: frozenset[str] | None = None
    site_ids: frozenset[int] | None = None
    statuses: frozenset[str] | None = None
    date_from: date | None = None
    date_to: date | None = None
    limit: int = 20
    offset: int = 0
    time_budget_s: float = 2.0
    #: At most this many values of each facet come back: the largest counts (ties by
    #: value). None: every value. A page shows a few; 500 sites need not travel for that.
    facet_values: int | None = None

    def __post_init__(self) -> None:
        # Values often come straight from URL parameters: clamp rather than fail the page.
        object.__setattr__(self, "limit", min(max(int(self.limit), 1), MAX_LIMIT))
        object.__setattr__(self, "offset", min(max(int(self.offset), 0), MAX_OFFSET))
        budget = float(self.time_budget_s)
        if budget != budget:  # NaN
            budget = 0.0
        object.__setattr__(self, "time_budget_s", min(max(budget, 0.0), MAX_TIME_BUDGET_S))
        if self.facet_values is not None:
            object.__setattr__(self, "facet_values", max(int(self.facet_values), 1))


@dataclass(frozen=True)
class Hit:
    """One result row. ``title`` is raw text; ``title_html`` and ``snippet_html`` are safe HTML."""

    document_id: int
    score: float
    title: str
    snippet_html: str
    title_html: str = ""


@dataclass
class SearchResults:
    """A page of hits with the total and the facet counts over the whole scoped result set.

    When ``timed_out`` is True the time budget ran out: hits, total and facets are what was
    found so far (possibly nothing) and ``total`` is a lower bound.

    When ``total_estimated`` is True the result set was too large to count within a search
    (a backend may estimate above a threshold): ``total`` and the facet counts are
    estimates, to be shown as "about N".
    """

    hits: list[Hit]
    total: int
    facets: dict[str, dict[str, int]]
    timed_out: bool
    elapsed_ms: float
    total_estimated: bool = False

    @classmethod
    def empty(cls, *, timed_out: bool = False, elapsed_ms: float = 0.0) -> SearchResults:
        """Results with nothing in them, e.g. for an empty scope."""
        return cls([], 0, {name: {} for name in FACET_NAMES}, timed_out, elapsed_ms)


@runtime_checkable
class SearchIndex(Protocol):
    """A full-text index of TMF documents. See the module docstring for the contract."""

    schema_version: int

    @property
    def needs_reindex(self) -> bool:
        """True when the stored index was built under another schema version."""
        ...

    def index(self, docs: Iterable[SearchDoc]) -> int:
        """Insert or replace ``docs`` by document_id in one commit; returns how many."""
        ...

    def delete(self, document_ids: Iterable[int]) -> int:
        """Remove documents by id in one commit; returns how many ids were asked for."""
        ...

    def search(self, query: SearchQuery) -> SearchResults:
        """Run a scoped, filtered, time-bounded search."""
        ...

    def count(self) -> int:
        """Number of documents in the index."""
        ...

    def clear(self) -> None:
        """Remove everything and stamp the current schema version (start of a reindex)."""
        ...

    def index_new(self, batches: Iterable[Sequence[SearchDoc]],
                  progress: Callable[[int], None] = lambda _n: None) -> int:
        """A rebuild's writes, after :meth:`clear`: documents not in the index yet, in
        batches; the backend commits when it likes. ``progress(n)`` once a batch of ``n``
        is taken; returns how many were written."""
        ...

    def after_rebuild(self) -> None:
        """Called once a full rebuild has written every document (planner statistics)."""
        ...

    def warm(self) -> None:
        """Load ahead what the first search would (run by ``etmf serve`` in each worker,
        in the background, so the first user's search does not pay for it)."""
        ...

    def health(self) -> None:
        """Return quietly when usable; raise :class:`SearchUnavailable` otherwise."""
        ...

    def describe(self) -> str:
        """One line for logs and the admin page: backend, location, schema version."""
        ...


# --- shared helpers for the implementations -------------------------------------------------


@dataclass(frozen=True)
class ParsedText:
    """The user's query text reduced to what both backends can express safely."""

    words: tuple[str, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()
    prefixes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing searchable is left: the query browses instead."""
        return not (self.words or self.phrases or self.prefixes)

    def websearch_text(self) -> str:
        """Words and phrases in PostgreSQL ``websearch_to_tsquery`` / Whoosh parser syntax."""
        parts = list(self.words)
        parts.extend('"' + " ".join(phrase) + '"' for phrase in self.phrases)
        return " ".join(parts)


def largest_values(counts: dict[str, int], most: int | None) -> dict[str, int]:
    """The ``most`` largest counts (ties by value), largest first; all of them, in their
    own order, when there are no more than ``most`` or ``most`` is None."""
    if most is None or len(counts) <= most:
        return counts
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:most])


def snippet_probes(parsed: ParsedText) -> list[str]:
    """What to look for, lower-cased, in a text to place its snippet window: the first
    letters of every word, prefix and phrase word of the query (no duplicates, in order).
    Both backends place the window where the earliest of them occurs and highlight the
    whole text instead when the window turns out to hold no match."""
    words = [*parsed.words, *parsed.prefixes, *(w for phrase in parsed.phrases for w in phrase)]
    return list(dict.fromkeys(w[:SNIPPET_PROBE_CHARS].lower() for w in words if w))


_TOKEN = re.compile(r"[^\W_]+(\*)?")
# Words the backends would read as operators; they are stop words anyway.
_OPERATOR_WORDS = frozenset({"and", "or", "not"})


def parse_query_text(text: str) -> ParsedText:
    """Reduce free user input to words, phrases and prefixes. Never raises.

    Quotes pair up left to right; an unmatched quote is ignored. Operators, punctuation and
    field syntax are dropped, so nothing the user types can reach a backend's own parser.
    """
    text = unicodedata.normalize("NFKC", text[:MAX_QUERY_CHARS]).lower()
    chunks = text.split('"')
    if len(chunks) % 2 == 0:  # an odd number of quotes: the last one is unmatched
        chunks[-2:] = [chunks[-2] + " " + chunks[-1]]
    words: list[str] = []
    phrases: list[tuple[str, ...]] = []
    prefixes: list[str] = []
    budget = MAX_QUERY_TERMS
    for position, chunk in enumerate(chunks):
        inside_quotes = position % 2 == 1
        tokens = [(m.group(0).rstrip("*"), m.group(1) is not None) for m in _TOKEN.finditer(chunk)]
        tokens = [(t, star) for t, star in tokens if t not in _OPERATOR_WORDS][:budget]
        budget -= len(tokens)
        if inside_quotes and len(tokens) > 1:
            phrases.append(tuple(t for t, _ in tokens))
            continue
        for token, star in tokens:
            if star and len(token) >= MIN_PREFIX_CHARS:
                prefixes.append(token)
            else:
                words.append(token)
    return ParsedText(tuple(dict.fromkeys(words)), tuple(phrases), tuple(dict.fromkeys(prefixes)))


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value: str | None, limit: int | None = None) -> str:
    """Text fit for any index: no control characters (PostgreSQL refuses NUL, and we use
    \\x02/\\x03 as highlight markers), no lone surrogates, at most ``limit`` characters."""
    if not value:
        return ""
    if limit is not None:
        value = value[:limit]
    value = value.encode("utf-8", "replace").decode("utf-8")
    return _CONTROL.sub(" ", value)


def metadata_text(doc: SearchDoc) -> str:
    """The secondary metadata words (people, places, codes) indexed beside title and body."""
    values = (doc.person, doc.country, doc.language, doc.version_label, doc.artifact_id,
              doc.section, doc.zone)
    return " ".join(clean_text(v) for v in values if v)


def unique_by_id(docs: Iterable[SearchDoc]) -> list[SearchDoc]:
    """The last submitted version of each document, in first-seen order.

    A batch may carry the same document twice (edited twice in a few seconds); both
    backends' upserts misbehave on duplicates inside one commit.
    """
    latest: dict[int, SearchDoc] = {}
    for doc in docs:
        latest[doc.document_id] = doc
    return list(latest.values())


def fallback_snippet(text: str) -> str:
    """The escaped opening of the text, cut at a word boundary, for hits with no highlight."""
    head = text[:SNIPPET_FALLBACK_CHARS]
    if len(text) > SNIPPET_FALLBACK_CHARS and " " in head:
        head = head.rsplit(" ", 1)[0] + " …"
    return html.escape(" ".join(head.split()))


def marked_html(text: str, start: str, stop: str) -> str:
    """Escape ``text`` as HTML, then turn the ``start``/``stop`` marker characters into
    ``<mark>`` tags. Markers are control characters that :func:`clean_text` removes from
    indexed content, so document text can never forge one."""
    escaped = html.escape(text)
    return escaped.replace(start, MARK_OPEN).replace(stop, MARK_CLOSE)
