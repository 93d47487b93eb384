"""The SearchIndex contract, run against every backend (Whoosh always; PostgreSQL when
ETMF_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from etmf.search import (
    SchemaMismatch,
    Scope,
    SearchIndex,
    SearchQuery,
    SearchResults,
)
from tests.integration.search.conftest import BackendHandle
from tests.integration.search.docs import (
    STUDY_A,
    STUDY_B,
    common_word_corpus,
    make_doc,
    small_tmf,
)

WHOLE_STUDY_A = Scope({STUDY_A: None})
BIG_CORPUS_SIZE = 1_000


@pytest.fixture
def tmf(search_index: SearchIndex) -> SearchIndex:
    """The six-document TMF of docs.small_tmf, indexed."""
    search_index.index(small_tmf())
    return search_index


def find(index: SearchIndex, text: str, scope: Scope = WHOLE_STUDY_A, **filters: object
         ) -> SearchResults:
    return index.search(SearchQuery(text, scope, **filters))  # type: ignore[arg-type]


def ids(results: SearchResults) -> set[int]:
    return {hit.document_id for hit in results.hits}


def only_mark_tags(fragment: str) -> bool:
    """True when the only HTML tags in ``fragment`` are <mark> and </mark>."""
    return re.sub(r"</?mark>", "", fragment).count("<") == 0


# --- words, metadata, phrases --------------------------------------------------------------


def test_word_only_inside_one_documents_text_finds_exactly_it_with_marked_snippet(
        tmf: SearchIndex) -> None:
    results = find(tmf, "quokka")

    assert ids(results) == {1}
    assert results.total == 1
    assert "<mark>quokka</mark>" in results.hits[0].snippet_html.lower()
    assert results.timed_out is False


FILLER = "alpha beta gamma delta epsilon " * 100  # 3,100 characters without the probes


def test_a_match_deep_in_a_long_text_is_marked_in_its_snippet(
        search_index: SearchIndex) -> None:
    # Only a window around the match is highlighted; it must hold the match.
    search_index.index([make_doc(1, text=FILLER + "the haemoglobin level " + FILLER)])

    snippet = find(search_index, "haemoglobin").hits[0].snippet_html.lower()

    assert "<mark>haemoglobin</mark>" in snippet
    assert len(snippet) < 600


def test_a_word_sharing_the_first_letters_does_not_hide_the_real_match(
        search_index: SearchIndex) -> None:
    # "students" holds "stud", the first letters of "study", but is not a match: the window
    # placed there has nothing to mark, and the whole text is highlighted instead.
    search_index.index([make_doc(1, text="students " + FILLER + "this study ended " + FILLER)])

    snippet = find(search_index, "study").hits[0].snippet_html.lower()

    assert "<mark>study</mark>" in snippet
    assert "students" not in snippet


def test_title_words_find_the_document_and_are_marked_in_the_title(tmf: SearchIndex) -> None:
    results = find(tmf, "investigator")

    assert ids(results) == {4}
    assert "<mark>" in results.hits[0].title_html
    assert results.hits[0].title == "Investigator CV"


def test_person_named_in_metadata_finds_their_documents(tmf: SearchIndex) -> None:
    assert ids(find(tmf, "moreau")) == {1}
    assert ids(find(tmf, "Keller")) == {2, 4}


def test_all_words_must_match(tmf: SearchIndex) -> None:
    assert ids(find(tmf, "monitoring deviation")) == {2}


def test_quoted_phrase_matches_the_words_in_that_order_only(tmf: SearchIndex) -> None:
    assert ids(find(tmf, "source data verification")) == {2, 3}
    assert ids(find(tmf, '"source data verification"')) == {2}


def test_trailing_star_matches_a_prefix(tmf: SearchIndex) -> None:
    assert ids(find(tmf, "cardio*")) == {4}


# --- filters and facets --------------------------------------------------------------------


def test_zone_filter_keeps_only_that_zone(tmf: SearchIndex) -> None:
    assert ids(find(tmf, "", zones=frozenset({"05"}))) == {2, 3}


def test_artifact_filter_keeps_only_that_artifact(tmf: SearchIndex) -> None:
    assert ids(find(tmf, "", artifact_ids=frozenset({"08.02.01"}))) == {4}


def test_site_filter_keeps_only_that_sites_documents(tmf: SearchIndex) -> None:
    assert ids(find(tmf, "", site_ids=frozenset({10}))) == {2, 4}


def test_status_filter_combines_with_words(tmf: SearchIndex) -> None:
    assert ids(find(tmf, "monitoring", statuses=frozenset({"approved"}))) == {3}


def test_document_date_range_is_inclusive_and_skips_undated(search_index: SearchIndex) -> None:
    search_index.index([
        make_doc(1, document_date=date(2024, 1, 31)),
        make_doc(2, document_date=date(2024, 2, 1)),
        make_doc(3, document_date=date(2024, 3, 1)),
        make_doc(4, document_date=None),
    ])

    window = find(search_index, "", date_from=date(2024, 2, 1), date_to=date(2024, 3, 1))
    until = find(search_index, "", date_to=date(2024, 1, 31))

    assert ids(window) == {2, 3}
    assert ids(until) == {1}


def test_facets_count_the_whole_scoped_result_set(tmf: SearchIndex) -> None:
    results = find(tmf, "", limit=1)

    assert results.total == 5
    assert len(results.hits) == 1
    assert results.facets["zone"] == {"01": 2, "05": 2, "08": 1}
    assert results.facets["artifact"] == {"01.01.01": 2, "05.04.04": 2, "08.02.01": 1}
    assert results.facets["site"] == {"10": 2, "11": 1}
    assert results.facets["status"] == {"approved": 4, "in_qc": 1}
    assert results.facets["year"] == {"2022": 1, "2023": 1, "2024": 3}


def test_facet_values_keeps_the_largest_counts_of_each_facet(
        search_index: SearchIndex) -> None:
    sites = [30] * 3 + [31] * 2 + [9] * 2 + [32] + [None] * 4  # None: trial level
    search_index.index([make_doc(i, site_id=site, status="approved" if i % 3 else "in_qc")
                        for i, site in enumerate(sites, start=1)])

    everything = find(search_index, "")
    largest = find(search_index, "", facet_values=2)

    assert everything.facets["site"] == {"30": 3, "31": 2, "9": 2, "32": 1}
    # Ties go by value ("31" before "9"); documents without a site take no place.
    assert largest.facets["site"] == {"30": 3, "31": 2}
    assert largest.total == everything.total == 12
    assert largest.facets["status"] == everything.facets["status"]  # only two values
    assert all(len(values) <= 2 for values in largest.facets.values())


def test_facets_follow_the_words_and_filters(tmf: SearchIndex) -> None:
    results = find(tmf, "monitoring", statuses=frozenset({"approved", "in_qc"}))

    assert results.total == 2
    assert results.facets["site"] == {"10": 1, "11": 1}
    assert results.facets["status"] == {"approved": 1, "in_qc": 1}


def test_browsing_without_words_lists_newest_document_date_first(tmf: SearchIndex) -> None:
    assert [h.document_id for h in find(tmf, "").hits] == [3, 2, 4, 1, 6]


def test_paging_walks_through_the_ranked_hits(tmf: SearchIndex) -> None:
    first = find(tmf, "", limit=2)
    second = find(tmf, "", limit=2, offset=2)

    assert [h.document_id for h in first.hits] == [3, 2]
    assert [h.document_id for h in second.hits] == [4, 1]
    assert first.total == second.total == 5


# --- permission scoping --------------------------------------------------------------------


@pytest.mark.req("ACC-2")
def test_other_studys_document_never_shows_in_hits_totals_or_facets(tmf: SearchIndex) -> None:
    word = find(tmf, "quokka")
    shared_words = find(tmf, "monitoring visit")

    assert ids(word) == {1} and word.total == 1
    assert 5 not in ids(shared_words)
    assert shared_words.total == 2
    assert "20" not in shared_words.facets["site"]
    assert ids(find(tmf, "Conti")) == set()


@pytest.mark.req("ACC-2")
def test_site_scope_sees_its_site_and_trial_level_documents_only(tmf: SearchIndex) -> None:
    site_10 = Scope({STUDY_A: frozenset({10})})

    results = find(tmf, "", site_10)

    assert ids(results) == {1, 2, 4, 6}
    assert results.total == 4
    assert results.facets["site"] == {"10": 2}
    assert ids(find(tmf, "Ruiz", site_10)) == set()


@pytest.mark.req("ACC-2")
def test_scope_over_two_studies_sees_both(tmf: SearchIndex) -> None:
    both = Scope({STUDY_A: None, STUDY_B: frozenset({20})})

    assert ids(find(tmf, "quokka", both)) == {1, 5}


@pytest.mark.req("ACC-1")
def test_empty_scope_finds_nothing_not_even_by_browsing(tmf: SearchIndex) -> None:
    for text in ("quokka", "", "*"):
        results = find(tmf, text, Scope({}))
        assert results.hits == [] and results.total == 0
        assert all(counts == {} for counts in results.facets.values())


# --- safe output and odd input -------------------------------------------------------------


def test_markup_in_title_and_text_comes_back_escaped(tmf: SearchIndex) -> None:
    for text in ("synopsis", "protocol", "amendments"):
        hit = next(h for h in find(tmf, text).hits if h.document_id == 6)
        assert only_mark_tags(hit.snippet_html), hit.snippet_html
        assert only_mark_tags(hit.title_html), hit.title_html
        assert "&lt;script&gt;" in hit.title_html
    # The raw title stays raw, for templates that escape on their own.
    assert find(tmf, "synopsis").hits[0].title.startswith("<script>")


ODD_QUERIES = [
    '"monitoring visit', 'AND', 'OR NOT', 'NOT', '*', '**', '"', '""', '"*"', ':', 'title:x',
    '(((', ')', 'report^3', '[a TO z]', '-quokka', 'qu*', '!', '&|', "<->", "'", "a" * 5_000,
    " ".join(["visit"] * 2_500), "quokka\x00\x02\x03", "\ud800 lone surrogate", "ℚuokka ⅰ",
]


def test_odd_query_syntax_never_raises(tmf: SearchIndex) -> None:
    for text in ODD_QUERIES:
        results = find(tmf, text)

        assert results.total >= 0, text
        assert all(only_mark_tags(h.snippet_html) for h in results.hits), text


def test_unbalanced_quote_still_searches_the_words(tmf: SearchIndex) -> None:
    assert ids(find(tmf, '"quokka')) == {1}
    assert ids(find(tmf, 'monitoring "deviation')) == {2}


# --- writing -------------------------------------------------------------------------------


def test_reindexing_a_document_replaces_it(search_index: SearchIndex) -> None:
    search_index.index([make_doc(1, title="Draft budget", text="original wording")])
    search_index.index([make_doc(1, title="Final budget", text="revised wording")])

    assert search_index.count() == 1
    assert ids(find(search_index, "revised")) == {1}
    assert ids(find(search_index, "original")) == set()
    assert find(search_index, "budget").total == 1


def test_same_document_twice_in_one_batch_keeps_the_last(search_index: SearchIndex) -> None:
    search_index.index([make_doc(1, text="first"), make_doc(1, text="second")])

    assert search_index.count() == 1
    assert ids(find(search_index, "second")) == {1}


def test_deleted_document_is_no_longer_found(tmf: SearchIndex) -> None:
    tmf.delete([1])

    assert ids(find(tmf, "quokka")) == set()
    assert tmf.count() == 5


def test_a_batch_of_500_documents_is_one_commit(handle: BackendHandle) -> None:
    index = handle.open()
    before = handle.commits()

    written = index.index(make_doc(n, text=f"batch document {n}") for n in range(1, 501))

    assert written == 500
    assert handle.commits() - before == 1
    assert index.count() == 500
    assert find(index, "batch", limit=5).total == 500


def test_clear_empties_the_index(tmf: SearchIndex) -> None:
    tmf.clear()

    assert tmf.count() == 0
    assert find(tmf, "").total == 0


def test_health_passes_and_describe_names_the_backend(
        search_index: SearchIndex, backend: str) -> None:
    search_index.health()

    expected = {"whoosh": "whoosh", "postgres": "postgresql"}[backend]
    assert expected in search_index.describe().lower()
    assert f"schema {search_index.schema_version}" in search_index.describe()


def test_index_from_another_schema_version_asks_for_reindex(handle: BackendHandle) -> None:
    handle.open().index([make_doc(1, text="quokka")])
    handle.set_stored_version(0)

    outdated = handle.open()

    assert outdated.needs_reindex is True
    with pytest.raises(SchemaMismatch, match="etmf search reindex"):
        find(outdated, "quokka")
    with pytest.raises(SchemaMismatch, match="etmf search reindex"):
        outdated.index([make_doc(2)])
    with pytest.raises(SchemaMismatch):
        outdated.health()
    outdated.clear()  # what `etmf search reindex` starts with
    assert outdated.needs_reindex is False
    assert find(outdated, "").total == 0


# --- the time bound ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_corpus(module_handle: BackendHandle) -> BackendHandle:
    """1,000 documents of a dozen common words, each holding the phrase "patient study visit"."""
    module_handle.open().index(common_word_corpus(BIG_CORPUS_SIZE))
    return module_handle


class StallingClock:
    """Advances a microsecond per reading, then jumps an hour: a machine that stalls."""

    def __init__(self, stall_after_readings: int) -> None:
        self.readings = 0
        self.stall_after = stall_after_readings

    def __call__(self) -> float:
        self.readings += 1
        return self.readings * 1e-6 + (3600.0 if self.readings > self.stall_after else 0.0)


PHRASE = '"patient study visit"'


def test_phrase_of_common_words_completes_within_a_normal_budget(
        big_corpus: BackendHandle) -> None:
    results = find(big_corpus.open(), PHRASE, time_budget_s=30.0)

    assert results.timed_out is False
    assert results.total == BIG_CORPUS_SIZE


def test_zero_budget_returns_a_notice_not_an_error(big_corpus: BackendHandle) -> None:
    results = find(big_corpus.open(), PHRASE, time_budget_s=0.0)

    assert results.timed_out is True
    assert results.hits == [] and results.total == 0


# Readings of the clock before it stalls: Whoosh reads it per matched document, PostgreSQL
# before each statement (the page of hits, then totals and facets).
STALL_AFTER = {"whoosh": 50, "postgres": 2}


def test_search_cut_short_returns_what_it_found_so_far(
        big_corpus: BackendHandle, backend: str) -> None:
    clock = StallingClock(STALL_AFTER[backend])

    results = find(big_corpus.open(clock=clock), PHRASE, time_budget_s=1.0)

    assert results.timed_out is True
    assert 0 < len(results.hits) <= 20
    assert len(results.hits) <= results.total < BIG_CORPUS_SIZE


def test_tiny_real_budget_never_raises_and_never_lies(big_corpus: BackendHandle) -> None:
    # 1 ms is usually too short for this phrase; either outcome must be truthful.
    results = find(big_corpus.open(), PHRASE, time_budget_s=0.001)

    found = ids(results)
    assert found <= set(range(1, BIG_CORPUS_SIZE + 1))
    if results.timed_out:
        assert len(found) <= results.total <= BIG_CORPUS_SIZE or not found
    else:
        assert results.total == BIG_CORPUS_SIZE and len(found) == 20
