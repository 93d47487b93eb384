"""PostgreSQL full-text implementation of :class:`etmf.search.base.SearchIndex` (production).

Every app server shares the one table, so there is no index folder to keep in sync. The
tables live on :data:`search_metadata`, which the Alembic migrations include;
:func:`create_schema` creates them directly for tests and the demo.

* ``tsv`` is a generated column: title and artifact name weigh A, the other metadata B, the
  body C. PostgreSQL refuses a tsvector over 1 MB; a body whose vector would be larger (e.g.
  pages of unique codes) is shortened until it fits, and only that part is searchable.
* User text goes through :func:`etmf.search.base.parse_query_text` first, then
  ``websearch_to_tsquery`` (words and phrases) and ``to_tsquery`` for prefixes.
* ``ts_headline`` does not escape HTML: it marks matches with control characters that the
  indexed text cannot contain, the result is escaped in Python, then the markers become
  ``<mark>`` tags.
* A phrase needs word positions, which the GIN index on ``tsv`` does not hold: every row
  with all its words would be read to check their order (a phrase of two common words that
  rarely stand together took 1.6 s at 250,000 documents). ``word_pairs`` (generated) holds
  each pair of lexemes at adjacent positions ("site visit") under a GIN index of its own;
  a phrase first asks for its adjacent pairs (see :func:`_adjacent_pairs`). The pairs of
  the title and metadata alone have an expression index, for a phrase's title candidates.
* Ranking reads each ranked document's out-of-line ``tsv``, so only a capped candidate set is
  ranked by it (see :func:`_ranked_page`): the newest matches, and the newest matches of
  ``head_tsv`` (title and metadata, kept in the row). Snippets are highlighted in a window
  around the earliest likely match of a long text (see :func:`_snippet_window`). Above
  :data:`ESTIMATE_ABOVE` expected matches, totals and facets are counted on a sample and
  flagged ``total_estimated``.
* Each statement runs under ``statement_timeout`` set to what is left of the budget. A
  cancelled statement is not an error: the result says ``timed_out`` and carries what the
  earlier statements found (the page of hits runs first, then totals and facets).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    DDL,
    BigInteger,
    Column,
    Computed,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    case,
    cast,
    delete,
    event,
    extract,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.sql.elements import ColumnElement

from etmf.search.base import (
    MAX_INDEXED_TEXT_CHARS,
    SCHEMA_VERSION,
    SNIPPET_SOURCE_CHARS,
    SNIPPET_WINDOW_CHARS,
    Hit,
    ParsedText,
    SchemaMismatch,
    SearchDoc,
    SearchError,
    SearchQuery,
    SearchResults,
    SearchUnavailable,
    clean_text,
    fallback_snippet,
    marked_html,
    parse_query_text,
    snippet_probes,
    unique_by_id,
)

Clock = Callable[[], float]

#: Included by the Alembic migrations; nothing else in the app lives on it.
search_metadata = MetaData()

_META_TEXT = (
    "coalesce(person, '') || ' ' || coalesce(country, '') || ' ' || coalesce(language, '')"
    " || ' ' || coalesce(version_label, '') || ' ' || coalesce(artifact_id, '')"
    " || ' ' || coalesce(section, '') || ' ' || coalesce(zone, '')"
)
_TSV_EXPRESSION = (
    "setweight(to_tsvector('english', coalesce(title, '') || ' ' || coalesce(artifact_name, '')),"
    " 'A') || setweight(to_tsvector('english', " + _META_TEXT + "), 'B')"
    " || setweight(to_tsvector('english', coalesce(body, '')), 'C')"
)

#: Title, artifact name (A) and metadata (B) only: small enough to stay in the table row (the
#: body vector is stored out of line and costs a read per row), so candidates are ranked by it
#: before the full vector ranks a capped set. Migration 0019 adds it to older tables.
HEAD_TSV_EXPRESSION = (
    "setweight(to_tsvector('english', coalesce(title, '') || ' ' || coalesce(artifact_name, '')),"
    " 'A') || setweight(to_tsvector('english', " + _META_TEXT + "), 'B')"
)

#: The pairs of lexemes at adjacent positions of a tsvector, as "first second" (lexemes of
#: the english configuration never hold a space). A phrase ``a <-> b`` matches a vector
#: exactly when "a b" is among its pairs, so requiring the pairs of a phrase's adjacent
#: words never drops a match. Migration 0023 adds the column to older databases.
ADJACENT_PAIRS_FUNCTION = """
CREATE OR REPLACE FUNCTION etmf_adjacent_pairs(v tsvector) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT a.lexeme || ' ' || b.lexeme), '{}')
  FROM (SELECT lexeme, unnest(positions) AS pos FROM unnest(v)) a
  JOIN (SELECT lexeme, unnest(positions) AS pos FROM unnest(v)) b ON b.pos = a.pos + 1
$$
"""
WORD_PAIRS_EXPRESSION = f"etmf_adjacent_pairs({_TSV_EXPRESSION})"
#: The pairs of the title and metadata alone, indexed as an expression (no column): a
#: phrase's title candidates are read through it (see :func:`_ranked_page`). Migration 0025
#: adds the index to older databases.
HEAD_PAIRS_EXPRESSION = "etmf_adjacent_pairs(head_tsv)"


#: A search with words estimates on one row in 128, or in 16 on a smaller table, the
#: sparsest that holds at least ROW_SAMPLE_ROWS rows (see :func:`_row_sample`); each sample
#: has a partial index of the words (migration 0024).
SAMPLE_MODULI = (128, 16)
ROW_SAMPLE_ROWS = 1_000


def sample_predicate(modulus: int) -> str:
    """The rows of the one-in-``modulus`` sample (a power of two): chosen by a hash of the
    document id, so the sample is spread over the whole table and stays the same from one
    search to the next. Written out as text: a partial index is used only by a query that
    says exactly this."""
    return f"(hashint8(document_id) & {modulus - 1}) = 0"


search_documents = Table(
    "search_documents",
    search_metadata,
    Column("document_id", BigInteger, primary_key=True, autoincrement=False),
    Column("study_id", BigInteger, nullable=False),
    Column("country", Text),
    Column("site_id", BigInteger),
    Column("zone", Text, nullable=False),
    Column("section", Text, nullable=False),
    Column("artifact_id", Text, nullable=False),
    Column("artifact_name", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("document_date", Date),
    Column("person", Text),
    Column("language", Text),
    Column("version_label", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("tsv", TSVECTOR, Computed(_TSV_EXPRESSION, persisted=True)),
    Column("head_tsv", TSVECTOR, Computed(HEAD_TSV_EXPRESSION, persisted=True)),
    Column("word_pairs", ARRAY(Text), Computed(WORD_PAIRS_EXPRESSION, persisted=True)),
    Column("indexed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_search_documents_tsv", "tsv", postgresql_using="gin"),
    Index("ix_search_documents_head_tsv", "head_tsv", postgresql_using="gin"),
    Index("ix_search_documents_word_pairs", "word_pairs", postgresql_using="gin"),
    Index("ix_search_documents_head_pairs", text(HEAD_PAIRS_EXPRESSION), postgresql_using="gin"),
    Index("ix_search_documents_study_site", "study_id", "site_id"),
    Index("ix_search_documents_zone", "zone"),
    Index("ix_search_documents_artifact", "artifact_id"),
    Index("ix_search_documents_status", "status"),
    Index("ix_search_documents_date", "document_date"),
    *(Index(f"ix_search_documents_tsv_1in{m}", "tsv", postgresql_using="gin",
            postgresql_where=text(sample_predicate(m))) for m in SAMPLE_MODULI),
)

# The generated column calls the function: it is made before the table and goes with it.
event.listen(search_documents, "before_create", DDL(ADJACENT_PAIRS_FUNCTION))
event.listen(search_documents, "after_drop",
             DDL("DROP FUNCTION IF EXISTS etmf_adjacent_pairs(tsvector)"))

search_meta = Table(
    "search_meta",
    search_metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

_VERSION_KEY = "schema_version"
_ENGLISH: ColumnElement[Any] = literal_column("'english'::regconfig")
_START, _STOP = "\x02", "\x03"
_HEADLINE_OPTIONS = (
    f"StartSel={_START}, StopSel={_STOP}, MaxFragments=2, MaxWords=18, MinWords=6, "
    'FragmentDelimiter=" … "'
)
_TITLE_OPTIONS = f"StartSel={_START}, StopSel={_STOP}, HighlightAll=true"
_QUERY_CANCELED = "57014"
_TSVECTOR_TOO_LONG = "54000"
_BATCH_ROWS = 200  # rows per INSERT statement; all of them still share one commit
#: Candidates ranked by the full vector (see :func:`_ranked_page`): the newest this many
#: title-and-metadata matches plus the newest this many matches.
RANK_CANDIDATES = 200
#: Above this many expected matches, totals and facets are estimated from a sample.
ESTIMATE_ABOVE = 20_000
#: A phrase is checked on each candidate's out-of-line body vector (word order is not in the
#: index), about ten times the cost of counting words alone: estimated above a tenth.
PHRASE_COUNT_COST = 10
#: About how many rows the block sample of a search without words reads.
SAMPLE_ROWS = 2_000
#: How much more a row costs when the newest matches are found by walking the date index
#: (the row's word vectors, stored out of line, are read and decompressed to check it) than
#: when all matches come from the words' index and are sorted (the row's date alone):
#: measured at 250,000 documents, about 12 µs against 1.3 µs. See :func:`_read_all_matches`.
WALK_ROW_COST = 9
_FACET_COLUMNS = {"zone": "zone", "artifact": "artifact_id", "site": "site_id",
                  "status": "status", "year": "year"}


def create_schema(engine: Engine) -> None:
    """Create the search tables (tests, demo) and stamp the current schema version."""
    search_metadata.create_all(engine)
    with engine.begin() as conn:
        _stamp_version(conn)


def _stamp_version(conn: Connection) -> None:
    stmt = pg_insert(search_meta).values(key=_VERSION_KEY, value=str(SCHEMA_VERSION))
    conn.execute(stmt.on_conflict_do_update(index_elements=["key"],
                                            set_={"value": str(SCHEMA_VERSION)}))


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None)
    return getattr(orig, "sqlstate", None)


class PostgresIndex:
    """Search over the ``search_documents`` table of a PostgreSQL database."""

    schema_version: int = SCHEMA_VERSION

    def __init__(self, engine: Engine, *, clock: Clock = time.monotonic,
                 estimate_above: int = ESTIMATE_ABOVE) -> None:
        if engine.dialect.name != "postgresql":
            raise SearchError(
                f"PostgreSQL full-text search needs a PostgreSQL database, not "
                f"{engine.dialect.name}; use the whoosh search backend instead."
            )
        self._engine = engine
        self._clock = clock
        self._estimate_above = estimate_above
        # The version only changes through migrations (which restart servers) or clear():
        # once seen current, do not ask the database again on every search.
        self._version_ok = False

    # --- schema version ---------------------------------------------------------------

    @property
    def stored_version(self) -> int | None:
        """The schema version stamped in ``search_meta`` (None if missing)."""
        try:
            with self._engine.connect() as conn:
                value = conn.scalar(select(search_meta.c.value)
                                    .where(search_meta.c.key == _VERSION_KEY))
        except SQLAlchemyError as exc:
            raise SearchUnavailable(
                f"The search tables cannot be read ({exc.__class__.__name__}); "
                "run the database migrations."
            ) from exc
        return int(value) if value is not None and value.isdigit() else None

    @property
    def needs_reindex(self) -> bool:
        """True when the table was filled under another schema version."""
        return self.stored_version != SCHEMA_VERSION

    def _require_current_schema(self) -> None:
        if self._version_ok:
            return
        stored = self.stored_version
        if stored != SCHEMA_VERSION:
            raise SchemaMismatch(
                f"The search table was built with schema version {stored or 'unknown'}, this "
                f"server needs version {SCHEMA_VERSION}. Run the database migrations, then "
                "`etmf search reindex` to rebuild it."
            )
        self._version_ok = True

    # --- writing ------------------------------------------------------------------------

    def index(self, docs: Iterable[SearchDoc]) -> int:
        """Upsert documents by id, all in one transaction."""
        self._require_current_schema()
        rows = [_row_of(doc) for doc in unique_by_id(docs)]
        if not rows:
            return 0
        try:
            with self._engine.begin() as conn:
                for start in range(0, len(rows), _BATCH_ROWS):
                    _upsert_rows(conn, rows[start:start + _BATCH_ROWS])
        except (OperationalError, InterfaceError) as exc:
            raise SearchUnavailable(f"Indexing {len(rows)} documents failed: {exc}") from exc
        except SQLAlchemyError as exc:
            # Not the connection: something in these documents (the indexer isolates it).
            raise SearchError(f"The database refused {len(rows)} documents: {exc}") from exc
        return len(rows)

    def index_new(self, batches: Iterable[Sequence[SearchDoc]],
                  progress: Callable[[int], None] = lambda _n: None) -> int:
        """A rebuild's writes: one transaction a batch, as :meth:`index` (its upserts cost
        PostgreSQL nothing on an empty table)."""
        written = 0
        for batch in batches:
            written += self.index(batch)
            progress(len(batch))
        return written

    def delete(self, document_ids: Iterable[int]) -> int:
        """Remove documents by id in one transaction."""
        ids = list(dict.fromkeys(document_ids))
        if not ids:
            return 0
        try:
            with self._engine.begin() as conn:
                conn.execute(delete(search_documents)
                             .where(search_documents.c.document_id.in_(ids)))
        except SQLAlchemyError as exc:
            raise SearchUnavailable(f"Removing {len(ids)} documents failed: {exc}") from exc
        return len(ids)

    def clear(self) -> None:
        """Empty the table and stamp the current schema version (start of a reindex)."""
        with self._engine.begin() as conn:
            conn.execute(delete(search_documents))
            _stamp_version(conn)
        self._version_ok = True

    # --- reading ------------------------------------------------------------------------

    def count(self) -> int:
        """Number of indexed documents."""
        with self._engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(search_documents)) or 0)

    def after_rebuild(self) -> None:
        """Fresh planner statistics for the rebuilt table. Without them (autovacuum off, or
        not yet run) the planner takes every word for a rare one and searches the whole
        table with plans meant for a few thousand rows: measured at 250,000 documents, 1-2 s
        a common-word query instead of 0.1-0.2 s."""
        with self._engine.connect() as conn:
            conn.execute(text("ANALYZE search_documents"))
            conn.commit()

    def warm(self) -> None:
        """Nothing to load: the database keeps its own caches."""

    def health(self) -> None:
        """Raise :class:`SearchUnavailable` when the database or the tables are not usable."""
        self._version_ok = False  # always ask the database: this is the probe
        self._require_current_schema()

    def describe(self) -> str:
        """Backend, database (without password) and schema, for logs and the admin page."""
        url = self._engine.url.render_as_string(hide_password=True)
        return f"PostgreSQL full-text search on {url} (schema {SCHEMA_VERSION})"

    def search(self, query: SearchQuery) -> SearchResults:
        """Scoped, filtered, faceted search; each statement bounded by the remaining budget."""
        self._require_current_schema()
        start = self._clock()
        if query.scope.is_empty:
            return SearchResults.empty()
        parsed = parse_query_text(query.text)
        tsquery = _tsquery(parsed)

        def remaining_ms() -> int:
            return int((start + query.time_budget_s - self._clock()) * 1000)

        def first_page(conn: Connection
                       ) -> tuple[Pairs, ColumnElement[bool], _Estimate, list[Hit]]:
            pairs = _adjacent_pairs(conn, parsed)
            where = _where(query, tsquery, search_documents, pairs)
            planned = _estimate(conn, where)
            return pairs, where, planned, _page(conn, where, tsquery, pairs, query, parsed,
                                                planned)

        started = self._run_bounded(remaining_ms, first_page)
        if started is None:
            return SearchResults.empty(timed_out=True,
                                       elapsed_ms=(self._clock() - start) * 1000.0)
        pairs, where, planned, hits = started
        # A phrase the pairs do not answer alone is checked on every match's body vector.
        estimate_above = (self._estimate_above // PHRASE_COUNT_COST
                          if parsed.phrases and not pairs.exact else self._estimate_above)
        counted = self._run_bounded(
            remaining_ms,
            lambda conn: _facet_counts(conn, where, query, tsquery, pairs, planned,
                                       estimate_above))
        elapsed_ms = (self._clock() - start) * 1000.0
        if counted is None:
            # Totals ran out of time: what we know is the page we have.
            return SearchResults(hits, query.offset + len(hits) if hits else 0,
                                 {name: {} for name in _FACET_COLUMNS}, True, elapsed_ms)
        total, facets, estimated = counted
        if estimated:  # a sample can miss what the page already shows
            total = max(total, query.offset + len(hits))
        return SearchResults(hits, total, facets, False, elapsed_ms, total_estimated=estimated)

    def _run_bounded(self, remaining_ms: Callable[[], int],
                     work: Callable[[Connection], Any]) -> Any | None:
        """Run ``work`` in a read transaction under the remaining budget; None on timeout."""
        budget = remaining_ms()
        if budget <= 0:
            return None
        try:
            with self._engine.begin() as conn:
                # SET LOCAL cannot take parameters; set_config(..., true) is the same thing.
                conn.execute(select(func.set_config("statement_timeout", f"{budget}ms", True),
                                    # Compiling a plan to machine code costs more than
                                    # these queries: never worth it inside a 2 s budget.
                                    func.set_config("jit", "off", True),
                                    # The right plan depends on the words (a rare one: its
                                    # index; a common one: the date index). A statement
                                    # run often is prepared (psycopg) and then planned
                                    # once for any words: measured, 35 ms a filtered
                                    # search became 240 ms.
                                    func.set_config("plan_cache_mode", "force_custom_plan",
                                                    True)))
                return work(conn)
        except DBAPIError as exc:
            if _sqlstate(exc) == _QUERY_CANCELED:
                return None
            raise SearchUnavailable(f"The search database failed: {exc.orig}") from exc


# --- document → row ---------------------------------------------------------------------------


def _row_of(doc: SearchDoc) -> dict[str, Any]:
    return {
        "document_id": doc.document_id,
        "study_id": doc.study_id,
        "country": clean_text(doc.country) or None,
        "site_id": doc.site_id,
        "zone": clean_text(doc.zone),
        "section": clean_text(doc.section),
        "artifact_id": clean_text(doc.artifact_id),
        "artifact_name": clean_text(doc.artifact_name),
        "title": clean_text(doc.title),
        "status": clean_text(doc.status),
        "document_date": doc.document_date,
        "person": clean_text(doc.person) or None,
        "language": clean_text(doc.language) or None,
        "version_label": clean_text(doc.version_label),
        "body": clean_text(doc.text, MAX_INDEXED_TEXT_CHARS),
    }


def _upsert_statement() -> Any:
    stmt = pg_insert(search_documents)
    # Generated columns (the vectors, the word pairs) follow the row by themselves.
    changing: dict[str, Any] = {c.name: stmt.excluded[c.name] for c in search_documents.columns
                                if c.computed is None
                                and c.name not in ("document_id", "indexed_at")}
    changing["indexed_at"] = func.now()
    return stmt.on_conflict_do_update(index_elements=["document_id"], set_=changing)


def _upsert_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Upsert rows; a row whose tsvector would pass PostgreSQL's 1 MB limit is shortened."""
    savepoint = conn.begin_nested()
    try:
        conn.execute(_upsert_statement(), rows)
        savepoint.commit()
        return
    except DBAPIError as exc:
        savepoint.rollback()
        if _sqlstate(exc) != _TSVECTOR_TOO_LONG:
            raise
    for row in rows:  # rare: find the oversized ones, one row at a time
        row = dict(row)
        while True:
            savepoint = conn.begin_nested()
            try:
                conn.execute(_upsert_statement(), [row])
                savepoint.commit()
                break
            except DBAPIError as exc:
                savepoint.rollback()
                if _sqlstate(exc) != _TSVECTOR_TOO_LONG or not row["body"]:
                    raise
                row["body"] = row["body"][: len(row["body"]) // 2]


# --- building the query ----------------------------------------------------------------------


def _tsquery(parsed: ParsedText) -> ColumnElement[Any] | None:
    """The tsquery for the user's words, phrases and prefixes; None means browse."""
    parts: list[ColumnElement[Any]] = []
    websearch = parsed.websearch_text()
    if websearch:
        parts.append(func.websearch_to_tsquery(_ENGLISH, websearch))
    if parsed.prefixes:
        # Tokens are letters and digits only, so they cannot carry to_tsquery operators.
        prefix_text = " & ".join(f"{p}:*" for p in parsed.prefixes)
        parts.append(func.to_tsquery(_ENGLISH, prefix_text))
    if not parts:
        return None
    combined = parts[0]
    for part in parts[1:]:
        combined = combined.op("&&")(part)
    return combined


@dataclass(frozen=True)
class Pairs:
    """The word pairs every match of the query's phrases holds (see ``word_pairs``), and
    whether holding them is the whole query: phrases of two words, nothing else. Then the
    pairs index answers alone, without reading a body vector to check word order."""

    pairs: tuple[str, ...] = ()
    exact: bool = False


_PHRASE_PAIRS = text(
    "SELECT etmf_adjacent_pairs(v) AS pairs, "
    "(SELECT coalesce(sum(cardinality(positions)), 0) FROM unnest(v)) AS words "
    "FROM (SELECT to_tsvector('english', :phrase) AS v) AS phrase")


def _adjacent_pairs(conn: Connection, parsed: ParsedText) -> Pairs:
    """The pairs of the query's phrases, made by the database with the parser, stop words
    and stemmer of the column.

    Only words next to each other in a phrase count: in "report of the visit" the stop
    words leave a gap, which PostgreSQL matches with any words in it, so no pair is asked
    for (and the phrase is checked on the body vector as before).
    """
    if not parsed.phrases:
        return Pairs()
    pairs: set[str] = set()
    exact = not (parsed.words or parsed.prefixes)
    for phrase in parsed.phrases:
        row = conn.execute(_PHRASE_PAIRS, {"phrase": " ".join(phrase)}).one()
        found = list(row.pairs or ())
        pairs.update(found)
        exact = exact and row.words == 2 and len(found) == 1
    return Pairs(tuple(sorted(pairs)), exact and bool(pairs))


def _has_pairs(table: Any, pairs: Pairs) -> ColumnElement[bool]:
    return table.c.word_pairs.contains(cast(list(pairs.pairs), ARRAY(Text)))


def _head_has_pairs(pairs: Pairs) -> ColumnElement[bool]:
    """The title and metadata hold the pairs, in the words of the expression index."""
    head_pairs = func.etmf_adjacent_pairs(search_documents.c.head_tsv, type_=ARRAY(Text))
    return head_pairs.contains(cast(list(pairs.pairs), ARRAY(Text)))


def _where(query: SearchQuery, tsquery: ColumnElement[Any] | None, table: Any,
           pairs: Pairs = Pairs()) -> ColumnElement[bool]:
    """Scope, filters and (unless browsing) the words, on ``table`` (the table or a sample).

    The phrases' adjacent word pairs narrow, through their own index, the rows the words are
    checked on; when they are the whole query they replace that check."""
    where = _restriction(query, table)
    if pairs.pairs:
        where = and_(where, _has_pairs(table, pairs))
    if tsquery is not None and not pairs.exact:
        where = and_(where, table.c.tsv.op("@@")(tsquery))
    return where


def _restriction(query: SearchQuery, table: Any = search_documents) -> ColumnElement[bool]:
    """Scope and filters, so hits, totals and facets only count what may be seen."""
    c = table.c
    per_study: list[ColumnElement[bool]] = []
    for study_id, sites in sorted(query.scope.studies.items()):
        if sites is None:
            per_study.append(c.study_id == study_id)
        else:
            # Trial- and country-level documents (no site) belong to every site's view.
            per_study.append(and_(c.study_id == study_id,
                                  or_(c.site_id.in_(sorted(sites)), c.site_id.is_(None))))
    parts: list[ColumnElement[bool]] = [or_(*per_study)]
    if query.zones is not None:
        parts.append(c.zone.in_(sorted(query.zones)))
    if query.artifact_ids is not None:
        parts.append(c.artifact_id.in_(sorted(query.artifact_ids)))
    if query.site_ids is not None:
        parts.append(c.site_id.in_(sorted(query.site_ids)))
    if query.statuses is not None:
        parts.append(c.status.in_(sorted(query.statuses)))
    if query.date_from is not None:
        parts.append(c.document_date >= query.date_from)
    if query.date_to is not None:
        parts.append(c.document_date <= query.date_to)
    return and_(true(), *parts)


def _page(conn: Connection, where: ColumnElement[bool], tsquery: ColumnElement[Any] | None,
          pairs: Pairs, query: SearchQuery, parsed: ParsedText, planned: _Estimate
          ) -> list[Hit]:
    """The requested page of hits, ranked (or newest first when browsing), with snippets."""
    if tsquery is None:
        return _browse_page(conn, where, query)
    return _ranked_page(conn, where, tsquery, pairs, query, parsed, planned)


def _browse_page(conn: Connection, where: ColumnElement[bool], query: SearchQuery) -> list[Hit]:
    c = search_documents.c
    rows = conn.execute(
        select(c.document_id, c.title, func.left(c.body, 400).label("head"))
        .where(where)
        .order_by(c.document_date.desc().nulls_last(), c.document_id.desc())
        .limit(query.limit).offset(query.offset)
    ).all()
    return [Hit(r.document_id, 0.0, r.title, fallback_snippet(r.head),
                marked_html(r.title, _START, _STOP)) for r in rows]


def _ranked_page(conn: Connection, where: ColumnElement[bool], tsquery: ColumnElement[Any],
                 pairs: Pairs, query: SearchQuery, parsed: ParsedText,
                 planned: _Estimate) -> list[Hit]:
    """The page of hits ranked by the full vector, among capped candidates.

    ``ts_rank`` on the full ``tsv`` reads each document's out-of-line body vector, so it is
    given at most two capped sets, not every match: the newest matches in the title,
    artifact name and metadata (``head_tsv``, in the row) and the newest matches. With no
    more matches than the cap the second set holds them all and the ranking is exact; a
    title match beyond it still ranks first as long as there are no more title matches
    than the cap. Beyond both caps, an older match can rank lower than it would (it is still
    counted, and found by narrower queries). The Whoosh backend chooses the same way.

    Both sets are read newest first, so the database stops at the cap: walking the date
    index, or for a rare word its own index and a sort of its few rows. Ranking every title
    match instead read all of them to choose among near ties (10,119 rows for "protocol" at
    250,000 documents: 20 ms when they were not in the database's cache).
    """
    c = search_documents.c
    cap = max(RANK_CANDIDATES, query.offset + query.limit)
    newest_first = (c.document_date.desc(), c.document_id.desc())
    # The head set is matched on ``head_tsv`` alone: asking ``tsv`` too would make the
    # database read each candidate's out-of-line body vector (a phrase is rechecked on it).
    # A head match is a full match: head_tsv is the start of tsv, and parse_query_text
    # lets no negation through. The page's own match below checks every candidate anyway.
    head_where = _restriction(query)
    if pairs.pairs:  # a phrase: only rows whose title and metadata hold its word pairs
        head_where = and_(head_where, _head_has_pairs(pairs))
    if not pairs.exact:
        # Checking a phrase's word positions costs about 35 µs a row: when the pairs are
        # the whole query they answer alone ("site visit" at 250,000 documents: the pairs
        # of whole documents left 10,352 rows to check, 64 ms; the head's pairs find the
        # 1,654 matches directly).
        head_where = and_(head_where, c.head_tsv.op("@@")(tsquery))
    newest_heads = select(c.document_id).where(head_where).order_by(*newest_first).limit(cap)
    newest = select(c.document_id).where(where).order_by(
        *(_unindexed_newest_first() if _read_all_matches(planned, cap)
          else newest_first)).limit(cap)
    candidates = union(newest_heads, newest).subquery()
    # Normalisation 1 divides by 1 + log(length) so long documents do not win on bulk.
    rank = func.ts_rank(c.tsv, tsquery, 1).label("score")
    page = (select(c.document_id, c.title, c.body, rank)
            .where(c.document_id.in_(select(candidates.c.document_id)),
                   c.tsv.op("@@")(tsquery))
            .order_by(rank.desc(), c.document_id)
            .limit(query.limit).offset(query.offset)).subquery()
    # Headlines re-parse the text, so they are made for the page's rows only, and of a long
    # text only for a window around its earliest likely match.
    window, windowed = _snippet_window(func.left(page.c.body, SNIPPET_SOURCE_CHARS),
                                       snippet_probes(parsed))
    rows = conn.execute(
        select(
            page.c.document_id, page.c.title, page.c.score,
            func.left(page.c.body, 400).label("head"),
            func.ts_headline(_ENGLISH, window, tsquery, _HEADLINE_OPTIONS).label("snippet"),
            windowed.label("windowed"),
            func.ts_headline(_ENGLISH, page.c.title, tsquery, _TITLE_OPTIONS).label("title_hl"),
        ).order_by(page.c.score.desc(), page.c.document_id)
    ).all()
    # A probe's letters found outside a match ("stud" in "student"): the whole text then.
    missed = [r.document_id for r in rows if r.windowed and _START not in r.snippet]
    whole = _whole_headlines(conn, missed, tsquery) if missed else {}
    return [Hit(r.document_id, float(r.score), r.title,
                _snippet_html(whole.get(r.document_id, r.snippet), r.head),
                marked_html(r.title_hl, _START, _STOP)) for r in rows]


def _read_all_matches(planned: _Estimate, cap: int) -> bool:
    """Whether the newest ``cap`` matches are cheaper found by reading every match through
    the words' index (and sorting them by date) than by walking the date index newest first.

    The walk checks about ``cap × rows / matches`` rows, each on its word vectors, which
    are stored out of line; reading every match costs a heap row each, and no vector. The
    planner prices both checks alike and walks for a few thousand matches too: a phrase of
    two common words with 12,240 matches at 250,000 documents checked 3,970 rows on the
    walk (47 ms) where reading its matches took 16 ms. The walk wins only above about
    ``sqrt(WALK_ROW_COST × cap × rows)`` matches (21,000 at 250,000 documents)."""
    if planned.matches <= cap or planned.rows is None:
        return False  # the planner reads so few through the index already
    return planned.matches ** 2 < WALK_ROW_COST * cap * planned.rows


def _unindexed_newest_first() -> tuple[ColumnElement[Any], ...]:
    """Newest first, as an expression the date index cannot give (the date plus no days):
    the database then reads the matches through the words' index and sorts them."""
    c = search_documents.c
    return ((c.document_date + literal_column("0", Integer)).desc(), c.document_id.desc())


def _snippet_window(source: ColumnElement[str], probes: list[str]
                    ) -> tuple[ColumnElement[str], ColumnElement[bool]]:
    """The part of ``source`` to highlight, and whether it is a window rather than all of
    it: :data:`SNIPPET_WINDOW_CHARS` around the earliest of the probes (the Whoosh backend
    cuts the same window in Python). Finding a few letters costs microseconds; parsing the
    text they spare costs about 0.2 ms a thousand characters."""
    if not probes:
        return source, false()
    lowered = func.lower(source)
    earliest = func.least(*(func.nullif(func.strpos(lowered, probe), 0) for probe in probes),
                          type_=Integer)
    windowed = and_(func.length(source) > 2 * SNIPPET_WINDOW_CHARS, earliest.is_not(None))
    start = func.greatest(earliest - SNIPPET_WINDOW_CHARS // 4, 1)
    return case((windowed, func.substr(source, start, SNIPPET_WINDOW_CHARS)),
                else_=source), windowed


def _whole_headlines(conn: Connection, document_ids: list[int],
                     tsquery: ColumnElement[Any]) -> dict[int, str]:
    c = search_documents.c
    rows = conn.execute(
        select(c.document_id,
               func.ts_headline(_ENGLISH, func.left(c.body, SNIPPET_SOURCE_CHARS), tsquery,
                                _HEADLINE_OPTIONS))
        .where(c.document_id.in_(document_ids)))
    return {document_id: headline for document_id, headline in rows}


def _snippet_html(headline: str, head: str) -> str:
    # Without a match in the body (e.g. a title or metadata hit) show the opening instead.
    if _START not in headline:
        return fallback_snippet(head)
    return marked_html(" ".join(headline.split()), _START, _STOP)


def _facet_counts(conn: Connection, where: ColumnElement[bool], query: SearchQuery,
                  tsquery: ColumnElement[Any] | None, pairs: Pairs, planned: _Estimate,
                  estimate_above: int) -> tuple[int, dict[str, dict[str, int]], bool]:
    """Total and per-facet counts over the whole scoped, filtered result set, in one pass;
    the last value says whether they are estimates.

    When the planner expects more than ``estimate_above`` matches, counting them all would
    read that many rows (and, for a phrase, each one's body vector): the counts are then
    taken on a sample and scaled up ("about N"), of rows by their id when there are words
    (:func:`_row_sample`), else of blocks.
    """
    if planned.matches <= estimate_above:
        total, facets = _grouped_counts(conn, search_documents, where, query.facet_values)
        return total, facets, False
    rows = planned.rows if planned.rows is not None else _table_rows(conn)
    if tsquery is None:
        # No words to check: a block sample reads about SAMPLE_ROWS rows and nothing more.
        percent = min(100.0, max(100.0 * SAMPLE_ROWS / rows, 0.001))
        # REPEATABLE: the same blocks every time, so paging keeps its total.
        sample = search_documents.tablesample(func.system(percent), name="sample",
                                                 seed=literal_column("0"))
        total, facets = _grouped_counts(conn, sample, _where(query, None, sample, pairs),
                                        query.facet_values)
        scale = 100.0 / percent
    else:
        in_sample, scale = _row_sample(rows)
        total, facets = _grouped_counts(conn, search_documents, and_(where, in_sample),
                                        query.facet_values)
    facets = {name: {value: max(round(n * scale), 1) for value, n in counts.items()}
              for name, counts in facets.items()}
    return round(total * scale), facets, True


def _row_sample(rows: float) -> tuple[ColumnElement[bool], float]:
    """The condition that keeps a search's matches to a sample, and the factor that scales
    the sample's counts up: one row in the largest of :data:`SAMPLE_MODULI` that still holds
    :data:`ROW_SAMPLE_ROWS` rows, or every row of a table too small for either.

    A sample of blocks (``TABLESAMPLE``) checked the words on each of its rows, reading and
    decompressing the row's out-of-line word vector: 2,000 rows cost about 20 ms at
    250,000 documents, whatever the words. A sample chosen by the document id has its own
    partial index of the words, so the database reads only the sample's matches, through
    that index, and no word vector (a phrase still checks word order on those few)."""
    for modulus in SAMPLE_MODULI:
        if rows / modulus >= ROW_SAMPLE_ROWS:
            return text(sample_predicate(modulus)), float(modulus)
    return true(), 1.0


@dataclass(frozen=True)
class _Estimate:
    """What the planner expects of a search: its matches, and the rows of the table (read
    only when there are more matches than a page's candidates; None otherwise)."""

    matches: float
    rows: float | None


def _estimate(conn: Connection, where: ColumnElement[bool]) -> _Estimate:
    """The planner's estimates (planning only, nothing is read)."""
    stmt = select(literal_column("1")).select_from(search_documents).where(where)
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + str(compiled),
                                compiled.params).scalar()
    if isinstance(plan, str):
        plan = json.loads(plan)
    matches = float(plan[0]["Plan"]["Plan Rows"])
    return _Estimate(matches, _table_rows(conn) if matches > RANK_CANDIDATES else None)


def _table_rows(conn: Connection) -> float:
    """The planner's count of the table's rows (kept by ANALYZE and VACUUM)."""
    return float(conn.scalar(text(
        "SELECT greatest(reltuples, 1) FROM pg_class WHERE oid = 'search_documents'::regclass"
    )) or 1.0)


def _grouped_counts(conn: Connection, table: Any, where: ColumnElement[bool],
                    most: int | None) -> tuple[int, dict[str, dict[str, int]]]:
    """The total and the counts of each facet's values (the ``most`` largest, or all)."""
    c = table.c
    year = extract("year", c.document_date).cast(Integer).label("year")
    keys: Sequence[ColumnElement[Any]] = (c.zone, c.artifact_id, c.site_id, c.status, year)
    grouping = func.grouping(*keys).label("grouping")
    grouped: Any = (select(*keys, grouping, func.count().label("n")).select_from(table)
                    .where(where).group_by(func.grouping_sets(*keys, text("()"))))
    full_mask = (1 << len(keys)) - 1
    if most is not None:  # rank each facet's values as largest_values() does, in the database
        g = grouped.subquery()
        value = func.coalesce(g.c.zone, g.c.artifact_id, cast(g.c.site_id, Text), g.c.status,
                              cast(g.c.year, Text))
        rank = func.row_number().over(partition_by=g.c.grouping, order_by=(
            value.is_(None), g.c.n.desc(), value.collate("C"))).label("rank")
        ranked = select(g, rank).subquery()
        grouped = select(*(ranked.c[k.name] for k in keys), ranked.c.grouping,
                         ranked.c.n).where(or_(ranked.c.grouping == full_mask,
                                               ranked.c.rank <= most))
    total = 0
    facets: dict[str, dict[str, int]] = {name: {} for name in _FACET_COLUMNS}
    names = list(_FACET_COLUMNS)
    # grouping() sets a bit for every key NOT grouped on; exactly one is grouped in a row.
    position_of = {full_mask & ~(1 << (len(keys) - 1 - i)): i for i in range(len(keys))}
    for row in conn.execute(grouped):
        if row.grouping == full_mask:  # the () grouping set: the grand total
            total = int(row.n)
            continue
        position = position_of[row.grouping]
        value = row[position]
        if value is not None:
            facets[names[position]][str(value)] = int(row.n)
    return total, facets
