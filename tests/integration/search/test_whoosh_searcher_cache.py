"""Whoosh keeps a pool of searchers (one per concurrent search) and reopens them only when
the index changed."""

from __future__ import annotations

import threading

from etmf.search import Scope, SearchQuery
from etmf.search.whoosh_index import WhooshIndex

from .docs import STUDY_A, make_doc


def _query(text: str) -> SearchQuery:
    return SearchQuery(text, Scope({STUDY_A: None}))


def _cached(index: WhooshIndex):  # type: ignore[no-untyped-def]
    """The one idle searcher (sequential searches leave exactly one)."""
    assert len(index._idle) == 1
    return index._idle[0][1]


def test_the_searcher_is_reused_until_a_commit(tmp_path):
    index = WhooshIndex(tmp_path)
    index.index([make_doc(1, text="alpha monitoring")])
    assert index.search(_query("alpha")).total == 1
    first = _cached(index)
    assert index.search(_query("alpha")).total == 1
    assert _cached(index) is first

    index.index([make_doc(2, text="alpha again"), make_doc(3, text="beta")])
    assert index.search(_query("alpha")).total == 2
    assert _cached(index) is not first
    index.delete([1])
    assert index.search(_query("alpha")).total == 1


def test_a_second_index_object_on_the_same_folder_sees_its_commits(tmp_path):
    reader, writer = WhooshIndex(tmp_path), WhooshIndex(tmp_path)
    assert reader.search(_query("gamma")).total == 0
    writer.index([make_doc(1, text="gamma")])
    assert reader.search(_query("gamma")).total == 1


def test_clear_drops_the_old_searcher(tmp_path):
    index = WhooshIndex(tmp_path)
    index.index([make_doc(1, text="delta")])
    assert index.search(_query("delta")).total == 1
    index.clear()
    assert index.search(_query("delta")).total == 0


def test_concurrent_searches_never_share_a_searcher_and_reuse_them(tmp_path):
    index = WhooshIndex(tmp_path)
    index.index([make_doc(n, text=f"epsilon {n}") for n in range(1, 30)])
    in_use: list[object] = []
    held = threading.Barrier(3)

    # Three searches inside the searcher context at the same moment get three searchers.
    def hold() -> None:
        with index._searcher() as searcher:
            in_use.append(searcher)
            held.wait(timeout=30)

    threads = [threading.Thread(target=hold) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(s) for s in in_use}) == 3
    assert {id(s) for _ix, s in index._idle} == {id(s) for s in in_use}

    totals: list[int] = []

    def search() -> None:
        for _ in range(5):
            totals.append(index.search(_query("epsilon")).total)

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert totals == [29] * 15
    # The pooled searchers were reused, none opened beyond the three already there.
    assert {id(s) for _ix, s in index._idle} <= {id(s) for s in in_use}

    index.index([make_doc(99, text="epsilon late")])
    assert index.search(_query("epsilon")).total == 30
    assert all(not s.is_closed for _ix, s in index._idle)
    assert all(s.is_closed for s in in_use)  # replaced after the commit, and closed
    index.close()
    assert index._idle == []


def test_facets_and_browse_order_follow_a_commit(tmp_path):
    """Facet counts and the browse order come from per-segment cached columns: a commit
    (new segments, merges, deletions) must show in both."""
    index = WhooshIndex(tmp_path)
    index.index([make_doc(n, text="theta", zone="01") for n in range(1, 6)])
    assert index.search(_query("theta")).facets["zone"] == {"01": 5}
    index.delete([1, 2])
    index.index([make_doc(n, text="theta", zone="02") for n in range(6, 9)])
    results = index.search(_query("theta"))
    assert results.facets["zone"] == {"01": 3, "02": 3}
    browse = index.search(_query(""))
    assert [h.document_id for h in browse.hits] == [8, 7, 6, 5, 4, 3]


def test_searching_while_another_index_object_commits(tmp_path):
    """Like two gunicorn workers: one commits batches (merging segments), one searches."""
    reader, writer = WhooshIndex(tmp_path), WhooshIndex(tmp_path)
    errors: list[BaseException] = []
    done = threading.Event()

    def write() -> None:
        try:
            for batch in range(40):
                writer.index([make_doc(batch * 5 + k + 1, text=f"zeta {batch}")
                              for k in range(5)])
        finally:
            done.set()

    def search() -> None:
        while not done.is_set():
            try:
                reader.search(_query("zeta"))
            except BaseException as exc:  # reported below
                errors.append(exc)
                return

    threads = [threading.Thread(target=write), threading.Thread(target=search)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert reader.search(_query("zeta")).total == 200
