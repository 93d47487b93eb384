"""PostgreSQL-only search behaviour: capped ranking, estimated totals, the real time bound.

The shared contract lives in test_search_contract.py; these cover what only the PostgreSQL
backend does (its ranking shortcut and its estimates) and that its time bound is enforced by
the database itself (``statement_timeout``), not only by the clock between statements.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, event, text

from etmf.search import Scope, SearchQuery, postgres_index
from etmf.search.postgres_index import PostgresIndex
from tests.integration.search.docs import STUDY_A, common_word_corpus, make_doc

pytestmark = pytest.mark.postgres

SCOPE = Scope({STUDY_A: None})
PHRASE = '"patient study visit"'
CORPUS = 1_000


@pytest.fixture(scope="module")
def corpus_engine(pg_schemas: Callable[[], Engine]) -> Engine:
    """1,000 documents of common words, each holding the phrase "patient study visit"."""
    engine = pg_schemas()
    PostgresIndex(engine).index(common_word_corpus(CORPUS))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE search_documents"))
    return engine


def test_below_the_threshold_totals_are_exact(corpus_engine: Engine) -> None:
    results = PostgresIndex(corpus_engine).search(SearchQuery(PHRASE, SCOPE))

    assert results.total == CORPUS
    assert results.total_estimated is False


def test_above_the_threshold_totals_and_facets_are_estimated(corpus_engine: Engine) -> None:
    index = PostgresIndex(corpus_engine, estimate_above=10)

    results = index.search(SearchQuery(PHRASE, SCOPE))

    # The sample is the whole table here (fewer rows than SAMPLE_ROWS): the estimate is exact
    # but still said to be one, as a page would say "about 1,000".
    assert results.total_estimated is True
    assert results.timed_out is False
    assert results.total == CORPUS
    assert sum(results.facets["status"].values()) == CORPUS
    assert len(results.hits) == 20


def test_a_sample_of_rows_scales_its_counts_up_and_is_read_through_its_own_index(
        corpus_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # 1,000 rows hold 62 in 16: enough for a one-in-16 sample when 50 will do.
    monkeypatch.setattr(postgres_index, "ROW_SAMPLE_ROWS", 50)
    index = PostgresIndex(corpus_engine, estimate_above=10)
    statements: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "grouping" in statement:
            statements.append((statement, parameters))

    event.listen(corpus_engine, "before_cursor_execute", capture)
    try:
        results = index.search(SearchQuery(PHRASE, SCOPE))
    finally:
        event.remove(corpus_engine, "before_cursor_execute", capture)

    assert results.total_estimated is True
    # Counts times 16: never below what the page shows, roughly the truth.
    assert len(results.hits) == 20
    assert CORPUS // 4 <= results.total <= CORPUS * 4
    assert results.total % 16 == 0
    # The sample's condition is the partial index's own, word for word: the planner can
    # read the sample's matches through that index (it would not if they differed).
    [(statement, parameters)] = statements
    assert postgres_index.sample_predicate(16) in statement
    with corpus_engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql(
            "EXPLAIN " + statement, parameters))  # type: ignore[arg-type]
    assert "ix_search_documents_tsv_1in16" in plan


def test_a_word_search_on_a_small_table_counts_every_row(corpus_engine: Engine) -> None:
    # 1,000 rows hold fewer than ROW_SAMPLE_ROWS in 16: the "sample" is the whole table.
    index = PostgresIndex(corpus_engine, estimate_above=10)

    results = index.search(SearchQuery("patient", SCOPE))

    assert (results.total, results.total_estimated) == (CORPUS, True)
    assert sum(results.facets["status"].values()) == CORPUS


def test_title_match_outranks_newer_body_matches_beyond_the_candidate_cap(
        pg_schemas: Callable[[], Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_index, "RANK_CANDIDATES", 5)
    engine = pg_schemas()
    index = PostgresIndex(engine)
    newer = [make_doc(n, title=f"Report {n}", text="the oxygen saturation log",
                      document_date=date(2025, 1, n)) for n in range(1, 21)]
    old_title = make_doc(99, title="Oxygen saturation plan", text="a plan",
                         document_date=date(2001, 1, 1))
    index.index([*newer, old_title])

    results = index.search(SearchQuery("oxygen", SCOPE, limit=3))

    assert results.total == 21
    assert results.hits[0].document_id == 99  # found by its title, not among the 5 newest
    assert {h.document_id for h in results.hits[1:]} <= {n for n in range(16, 21)}


@pytest.fixture
def locked_table(corpus_engine: Engine) -> Iterator[None]:
    """Another session holds an exclusive lock on the table: every read waits on it."""
    ready, release = threading.Event(), threading.Event()

    def hold() -> None:
        with corpus_engine.connect() as conn, conn.begin():
            conn.execute(text("LOCK TABLE search_documents IN ACCESS EXCLUSIVE MODE"))
            ready.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert ready.wait(30)
    try:
        yield
    finally:
        release.set()
        holder.join(60)


def test_the_database_cancels_a_search_at_its_budget_and_says_so(
        corpus_engine: Engine, locked_table: None) -> None:
    # Without statement_timeout this search would wait for the lock for a minute.
    results = PostgresIndex(corpus_engine).search(SearchQuery("patient", SCOPE,
                                                              time_budget_s=0.3))

    assert results.timed_out is True
    assert results.hits == [] and results.total == 0


def test_a_phrase_is_estimated_sooner_than_words(corpus_engine: Engine) -> None:
    # A phrase is rechecked on every match's body vector: counted exactly only up to a tenth.
    index = PostgresIndex(corpus_engine, estimate_above=CORPUS * 5)

    words = index.search(SearchQuery("patient study visit", SCOPE))
    phrase = index.search(SearchQuery(PHRASE, SCOPE))

    assert (words.total, words.total_estimated) == (CORPUS, False)
    assert phrase.total_estimated is True
    assert phrase.total == CORPUS  # the sample is the whole (small) table


def test_beyond_the_cap_the_newest_title_matches_are_ranked(
        pg_schemas: Callable[[], Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_index, "RANK_CANDIDATES", 5)
    engine = pg_schemas()
    newer = [make_doc(n, title=f"Report {n}", text="the oxygen saturation log",
                      document_date=date(2025, 1, n)) for n in range(1, 21)]
    titled = [make_doc(100 + n, title=f"Oxygen saturation plan {n}", text="a plan",
                       document_date=date(2001, 1, n)) for n in range(1, 9)]
    PostgresIndex(engine).index([*newer, *titled])

    results = PostgresIndex(engine).search(SearchQuery("oxygen", SCOPE, limit=3))

    # Every match is counted; the page ranks the five newest title matches (titles weigh
    # more than text; equal ranks in id order) and the five newest matches: the three
    # oldest titles are not among the candidates.
    assert results.total == 28
    assert [h.document_id for h in results.hits] == [104, 105, 106]


@pytest.mark.parametrize("phrase", ['"oxygen saturation"', '"oxygen saturation" plan'])
def test_a_phrase_in_an_old_title_outranks_newer_text_beyond_the_cap(
        pg_schemas: Callable[[], Engine], monkeypatch: pytest.MonkeyPatch, phrase: str) -> None:
    # Two words alone are answered by the title's word pairs; with another word the title
    # is still checked for the phrase and the word.
    monkeypatch.setattr(postgres_index, "RANK_CANDIDATES", 5)
    engine = pg_schemas()
    newer = [make_doc(n, title=f"Report {n}", text="the oxygen saturation plan log",
                      document_date=date(2025, 1, n)) for n in range(1, 21)]
    apart = make_doc(98, title="Saturation plan, oxygen", text="the oxygen saturation plan",
                     document_date=date(2000, 1, 1))  # the phrase in its text only
    titled = make_doc(99, title="Oxygen saturation plan", text="a plan",
                      document_date=date(2001, 1, 1))
    PostgresIndex(engine).index([*newer, apart, titled])

    results = PostgresIndex(engine).search(SearchQuery(phrase, SCOPE, limit=3))

    assert results.total == 22
    # Found by its title, older than the five newest text matches; the title whose words
    # are there but apart is no title match, and too old to be among the newest.
    assert results.hits[0].document_id == 99
    assert 98 not in {h.document_id for h in results.hits}
    assert {h.document_id for h in results.hits[1:]} <= set(range(16, 21))


def test_searches_are_planned_for_their_own_words(corpus_engine: Engine) -> None:
    # psycopg prepares a statement run five times; PostgreSQL would then plan it once for
    # any words. Each search transaction asks for a plan made for its own.
    index = PostgresIndex(corpus_engine)

    setting = index._run_bounded(lambda: 2000,
                                 lambda conn: conn.scalar(text("SHOW plan_cache_mode")))

    assert setting == "force_custom_plan"


PHRASE_DOCS = {
    1: "the site visit log was signed",          # the phrase
    2: "visit the site before the log",          # both words, other order
    3: "a site-visit report",                    # hyphenated: the parts stand next to each other
    4: "report of the visit",                    # stop words between
    5: "report on a visit to the pharmacy",      # other stop words, same distance
    6: "report visit",                           # no gap
    7: "site visit report",                      # three words in order
}


@pytest.mark.parametrize("phrase, expected", [
    ('"site visit"', {1, 3, 7}),
    ('"visit site"', set()),
    ('"report of the visit"', {4, 5}),
    ('"site visit report"', {3, 7}),
    ('"site visit" log', {1}),
])
def test_word_pairs_narrow_phrases_without_losing_a_match(
        pg_schemas: Callable[[], Engine], phrase: str, expected: set[int]) -> None:
    engine = pg_schemas()
    index = PostgresIndex(engine)
    index.index([make_doc(n, title=f"Note {n}", text=body) for n, body in PHRASE_DOCS.items()])

    found = {h.document_id for h in index.search(SearchQuery(phrase, SCOPE)).hits}

    assert found == expected


def test_the_newest_candidates_are_the_same_read_through_the_words_or_walked_by_date(
        pg_schemas: Callable[[], Engine], monkeypatch: pytest.MonkeyPatch) -> None:
    # Few matches in a large table are read through the words' index and sorted; many are
    # found by walking the date index. Both must choose the same newest candidates, ties
    # (same date, the higher number first) and undated documents (first, as on the walk)
    # included.
    monkeypatch.setattr(postgres_index, "RANK_CANDIDATES", 5)
    engine = pg_schemas()
    matches = [make_doc(n, text="the oxygen saturation log", title=f"Log {n}",
                        document_date=None if n % 13 == 0 else date(2024, 1 + n % 12, 1))
               for n in range(1, 41)]
    others = [make_doc(1000 + n, text="a plan of the visits") for n in range(400)]
    PostgresIndex(engine).index([*matches, *others])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE search_documents"))
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_rest: statements.append(statement))

    def search(walk_row_cost: int) -> tuple[list[tuple[int, float]], bool]:
        monkeypatch.setattr(postgres_index, "WALK_ROW_COST", walk_row_cost)
        statements.clear()
        results = PostgresIndex(engine).search(SearchQuery("oxygen", SCOPE, limit=5))
        assert results.total == 40
        read_all = any("document_date + 0" in s for s in statements)
        return [(h.document_id, h.score) for h in results.hits], read_all

    walked, walk_read_all = search(0)
    read, read_read_all = search(10**9)

    assert (walk_read_all, read_read_all) == (False, True)
    assert read == walked
    assert len(walked) == 5
