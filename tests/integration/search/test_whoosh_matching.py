"""Whoosh-only: words are matched from whole posting blocks as sets (common words' postings
kept), and the browse order is walked from a kept newest-first order; both against the
answer worked out by hand from the documents, across several segments, posting lists of
many blocks, and deletions made after the restriction's flags and the postings were kept."""

from __future__ import annotations

import random
from datetime import date

import pytest
from whoosh import query as wq

from etmf.search import Scope, SearchQuery, whoosh_index
from etmf.search.whoosh_index import WhooshIndex

from .docs import STUDY_A, make_doc

SCOPE = Scope({STUDY_A: None})
WORDS = ("oxygen", "zebra", "quartz", "lemon", "harbour")
STATUSES = ("draft", "approved")
SIZE = 900  # "oxygen" alone spans several posting blocks of 128


@pytest.fixture(scope="module")
def corpus() -> dict[int, tuple[set[str], str, date]]:
    """Document id -> (its words, status, date, site); dates repeat, so ties happen."""
    rng = random.Random(11)
    return {n: ({w for w in WORDS if rng.random() < (0.9 if w == "oxygen" else 0.3)},
                rng.choice(STATUSES), date(2024, 1 + n % 12, 1 + n % 5), 10 + n % 30)
            for n in range(1, SIZE + 1)}


@pytest.fixture
def index(tmp_path, corpus) -> WhooshIndex:  # type: ignore[no-untyped-def]
    index = WhooshIndex(tmp_path)
    ids = sorted(corpus)
    for part in (ids[:400], ids[400:700], ids[700:]):  # one segment a commit
        index.index([make_doc(n, text="note " + " ".join(sorted(corpus[n][0])),
                              status=corpus[n][1], document_date=corpus[n][2],
                              site_id=corpus[n][3])
                     for n in part])
    return index


def expected(corpus: dict[int, tuple[set[str], str, date, int]], words: set[str],
             status: str | None = None, gone: frozenset[int] = frozenset(),
             site: int | None = None) -> set[int]:
    return {n for n, (has, st, _d, at) in corpus.items()
            if words <= has and (status is None or st == status) and n not in gone
            and (site is None or at == site)}


QUERIES = [("oxygen", None, None), ("zebra", None, None), ("oxygen zebra", None, None),
           ("zebra quartz lemon", None, None), ("oxygen", "approved", None),
           ("lemon harbour", "draft", None), ("nothinglikeit", None, None),
           ("oxygen", None, 17), ("zebra lemon", "approved", 12)]  # the last two: narrow


@pytest.mark.parametrize("kept_from", [50, 10**9], ids=["postings kept", "read each time"])
def test_words_match_exactly_their_documents_before_and_after_deletions(
        index: WhooshIndex, corpus, kept_from: int,  # type: ignore[no-untyped-def]
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whoosh_index._PostingsCache, "KEEP_FROM", kept_from)

    def totals(gone: frozenset[int]) -> list[tuple[int, int]]:
        found = []
        for text, status, site in QUERIES:
            results = index.search(SearchQuery(
                text, SCOPE, statuses=frozenset({status}) if status else None,
                site_ids=frozenset({site}) if site else None, limit=50))
            want = expected(corpus, set(text.split()), status, gone, site)
            assert {h.document_id for h in results.hits} <= want
            assert sum(results.facets["status"].values()) == results.total
            found.append((results.total, len(want)))
        return found

    before = totals(frozenset())  # also keeps each restriction's flags (and postings)
    assert bool(index._postings._entries) is (kept_from == 50)
    gone = frozenset(range(5, SIZE, 7))  # in every segment, after the flags were kept
    index.delete(gone)
    after = totals(gone)

    assert all(total == want for total, want in before + after)
    assert after[0][0] < before[0][0]


def test_a_prefix_matches_as_the_or_of_its_words(index: WhooshIndex, corpus) -> None:  # type: ignore[no-untyped-def]
    results = index.search(SearchQuery("zeb* quar*", SCOPE))

    assert results.total == len(expected(corpus, {"zebra", "quartz"}))


@pytest.mark.parametrize(("text", "date_from", "limit"), [
    ("", None, 5),                    # browsing every document: the walk stops early
    ("", date(2024, 12, 5), 5),       # a few dated documents: keyed and compared
    ("oxygen", None, 5),              # beyond the ranking cap, the newest candidates
])
def test_newest_first_whether_matches_are_many_or_few(
        index: WhooshIndex, corpus, text: str, date_from: date | None,  # type: ignore[no-untyped-def]
        limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whoosh_index, "RANK_CANDIDATES", limit)
    results = index.search(SearchQuery(text, SCOPE, date_from=date_from, limit=limit))

    pool = [n for n, (has, _s, d, _at) in corpus.items()
            if (not text or text in has) and (date_from is None or d >= date_from)]
    newest = sorted(pool, key=lambda n: (corpus[n][2], n), reverse=True)[:limit]
    found = [h.document_id for h in results.hits]
    if text:  # ranked by score among the newest candidates: the same documents
        assert sorted(found) == sorted(newest)
    else:
        assert found == newest
    assert results.total == len(pool)


# --- words and phrases through the words field -----------------------------------------------

FIELD_DOCS = {
    1: {"title": "Monitoring visits", "text": "routine notes"},       # title only, plural
    2: {"artifact_name": "Visit Log", "text": "routine notes"},        # artifact name only
    3: {"person": "Visiting Smith", "text": "routine notes"},          # metadata only
    4: {"text": "the monitor visited the site"},                       # body only, past tense
    5: {"title": "Site dose log", "text": "dosing of the monitor"},    # none of "visit"
    6: {"title": "Closing", "text": "visit the site; monitoring dose site visit"},
}


@pytest.fixture
def fields(tmp_path) -> WhooshIndex:  # type: ignore[no-untyped-def]
    index = WhooshIndex(tmp_path)
    index.index([make_doc(n, **values) for n, values in list(FIELD_DOCS.items())[:3]])
    index.index([make_doc(n, **values) for n, values in list(FIELD_DOCS.items())[3:]])
    return index


@pytest.mark.parametrize("text", [
    "visit", "visits", "monitor", "monitoring visit", "visit OR dose", "visit -site",
    "vis*", "mon* site", '"dose site"', '"site visit"', '"monitoring dose site"', "smith",
    "01.01.01", "routine", 'mon* "monitoring dose site"',
])
def test_matching_from_the_words_field_finds_what_the_text_fields_hold(
        fields: WhooshIndex, text: str) -> None:
    parsed = whoosh_index.parse_query_text(text)
    with fields._searcher() as searcher:
        matching = whoosh_index._text_query(parsed, searcher.schema,
                                            whoosh_index._Deadline(lambda: 0.0, 1.0))
        on_the_fields = whoosh_index._text_query(parsed, searcher.schema, None)
        oracle = {int(searcher.stored_fields(d)["doc_id"])
                  for d in searcher.docs_for_query(on_the_fields)}

    results = fields.search(SearchQuery(text, SCOPE))

    assert {h.document_id for h in results.hits} == oracle and results.total == len(oracle)
    assert oracle  # every query here finds something to compare
    assert "'words'" in repr(matching) and "'words'" not in repr(on_the_fields)


def test_a_word_sought_everywhere_is_one_term_of_the_words_field(fields: WhooshIndex) -> None:
    with fields._searcher() as searcher:
        deadline = whoosh_index._Deadline(lambda: 0.0, 1.0)
        one = whoosh_index._text_query(whoosh_index.parse_query_text("visits"),
                                       searcher.schema, deadline)
        head = whoosh_index._text_query(whoosh_index.parse_query_text("visits"),
                                        searcher.schema, deadline, ("title",))

    assert one == wq.And([wq.Term("words", "visit")])
    with fields._searcher() as searcher:
        prefix = whoosh_index._text_query(whoosh_index.parse_query_text("mon*"),
                                          searcher.schema, deadline)
        terms = {t for _f, t in prefix.simplify(searcher.reader()).iter_all_terms()}
    assert terms == {"monitor"}  # the word, not the pairs it begins ("monitor+visit", …)
    assert "'words'" not in repr(head)  # only some fields: their own postings



PHRASE_DOCS = {
    1: ("Dose site log", "the dose site was set"),          # adjacent in title and body
    2: ("Log", "site dose, in that order only"),            # reversed
    3: ("Log", "the dose of the site"),                     # stop words between: adjacent
    4: ("Notes on dose", "site visit planned"),             # adjacent only across fields
    5: ("Log", "monitoring visit then a site; the visit site"),  # pairs apart, no run
    6: ("Log", "after the monitoring visit site closed"),   # the run of three
}


@pytest.fixture
def phrases(tmp_path) -> WhooshIndex:  # type: ignore[no-untyped-def]
    index = WhooshIndex(tmp_path)
    index.index([make_doc(n, title=title, text=text, artifact_name="Log")
                 for n, (title, text) in PHRASE_DOCS.items()])
    return index


@pytest.mark.parametrize(("phrase", "found"), [
    ('"dose site"', {1, 3}),
    ('"site dose"', {2}),
    ('"monitoring visit site"', {6}),
    ('"visit site"', {5, 6}),
])
def test_phrases_answered_from_pairs_match_only_words_standing_together_in_one_field(
        phrases: WhooshIndex, phrase: str, found: set[int]) -> None:
    results = phrases.search(SearchQuery(phrase, SCOPE))

    assert {h.document_id for h in results.hits} == found
    assert results.total == len(found) and not results.timed_out


def test_a_two_word_phrase_is_matched_as_its_pair_alone(phrases: WhooshIndex) -> None:
    with phrases._searcher() as searcher:
        matching = whoosh_index._text_query(
            whoosh_index.parse_query_text('"dose site"'), searcher.schema,
            whoosh_index._Deadline(lambda: 0.0, 1.0))
        scoring = whoosh_index._text_query(
            whoosh_index.parse_query_text('"dose site"'), searcher.schema, None)

    assert whoosh_index._set_algebra(matching)  # no word positions read to match it
    assert "'words'" not in repr(scoring)       # the words field never weighs in a score


def test_an_index_of_the_previous_layout_asks_to_be_rebuilt(phrases: WhooshIndex) -> None:
    (phrases.path / whoosh_index.VERSION_FILE).write_text("1\n", encoding="ascii")
    reopened = WhooshIndex(phrases.path)

    assert reopened.needs_reindex and reopened.stored_layout == 1
    with pytest.raises(whoosh_index.SchemaMismatch, match="etmf search reindex"):
        reopened.search(SearchQuery('"dose site"', SCOPE))
