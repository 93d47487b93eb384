"""Whoosh-only: how matches beyond the ranking cap are chosen, and narrow filters.

Beyond ``RANK_CANDIDATES`` matches only capped candidates are scored (the newest matches
and the newest title matches), as in the PostgreSQL backend; totals and facets still count
every match.
"""

from __future__ import annotations

from datetime import date

import pytest

from etmf.search import Scope, SearchQuery, whoosh_index
from etmf.search.whoosh_index import WhooshIndex

from .docs import STUDY_A, make_doc

SCOPE = Scope({STUDY_A: None})


@pytest.fixture
def oxygen(tmp_path) -> WhooshIndex:  # type: ignore[no-untyped-def]
    index = WhooshIndex(tmp_path)
    newer = [make_doc(n, title=f"Report {n}", text="the oxygen saturation log",
                      document_date=date(2025, 1, n), site_id=10 + n % 2)
             for n in range(1, 21)]
    old_title = make_doc(99, title="Oxygen saturation plan", text="a plan",
                         document_date=date(2001, 1, 1), site_id=11)
    index.index([*newer, old_title])
    return index


def test_beyond_the_cap_a_title_match_still_outranks_newer_body_matches(
        oxygen: WhooshIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whoosh_index, "RANK_CANDIDATES", 5)

    results = oxygen.search(SearchQuery("oxygen", SCOPE, limit=3))

    assert results.total == 21 and sum(results.facets["status"].values()) == 21
    assert results.hits[0].document_id == 99  # a title match, not among the 5 newest
    assert {h.document_id for h in results.hits[1:]} <= set(range(16, 21))


def test_a_narrow_filter_finds_exactly_its_matches(oxygen: WhooshIndex) -> None:
    results = oxygen.search(SearchQuery("oxygen", SCOPE, site_ids=frozenset({11})))

    assert {h.document_id for h in results.hits} == {n for n in range(1, 21) if n % 2} | {99}
    assert results.total == 11


def test_the_allowed_documents_kept_stay_within_their_memory_bound(
        oxygen: WhooshIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whoosh_index._AllowedCache, "MAX_BYTES", 50)  # ~2 entries of 21
    found = []
    for day in range(1, 11):  # each date range is a restriction of its own
        results = oxygen.search(SearchQuery("oxygen", SCOPE, date_from=date(2025, 1, day)))
        found.append(results.total)

    assert found == [21 - day for day in range(1, 11)]  # documents 1..20 dated Jan 1..20
    cache = oxygen._allowed
    assert 0 < cache._bytes <= 50 and len(cache._entries) <= 2


def test_warming_loads_every_segments_values_before_the_first_search(
        tmp_path) -> None:  # type: ignore[no-untyped-def]
    writer = WhooshIndex(tmp_path)
    for batch in range(3):  # one segment per commit
        writer.index([make_doc(batch * 10 + n, text="oxygen") for n in range(1, 4)])
    index = WhooshIndex(tmp_path)  # as a freshly started worker opens it

    assert index._columns._by_segment == {}
    index.warm()

    with index._searcher() as searcher:
        segments = [r for r, _offset in searcher.reader().leaf_readers()]
    assert len(index._columns._by_segment) == len(segments) >= 2
    for values in index._columns._by_segment.values():  # the walk and the facet counts
        assert {whoosh_index._ColumnCache.NEWEST_FIRST,
                whoosh_index._ColumnCache.COMBINED_KEY} <= set(values)
    # One object per distinct value, shared by every document and segment holding it.
    statuses = [v for values in index._columns._by_segment.values() for v in values["status"]]
    assert len(statuses) == 9 and len({id(v) for v in statuses}) == 1
    assert index.search(SearchQuery("oxygen", SCOPE)).total == 9
