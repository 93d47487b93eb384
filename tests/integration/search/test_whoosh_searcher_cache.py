"""Whoosh keeps one searcher per thread and reopens it only when the index changed."""

from __future__ import annotations

import threading

from etmf.search import Scope, SearchQuery
from etmf.search.whoosh_index import WhooshIndex

from .docs import STUDY_A, make_doc


def _query(text: str) -> SearchQuery:
    return SearchQuery(text, Scope({STUDY_A: None}))


def _cached(index: WhooshIndex):  # type: ignore[no-untyped-def]
    return index._local.searcher[1]


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


def test_threads_do_not_share_a_searcher(tmp_path):
    index = WhooshIndex(tmp_path)
    index.index([make_doc(n, text=f"epsilon {n}") for n in range(1, 30)])
    seen: list[object] = []
    totals: list[int] = []

    def search() -> None:
        for _ in range(5):
            totals.append(index.search(_query("epsilon")).total)
        seen.append(_cached(index))

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert totals == [29] * 15
    assert len({id(s) for s in seen}) == 3


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
