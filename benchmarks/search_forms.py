"""Search on a generated instance, either backend: the mixed load's four search forms.

    .venv/bin/python benchmarks/search_forms.py --instance /tmp/scale/sqlite-250k \\
        [--queries 30] [--seed 5] [--floor-limit 10]

(Until session 9 this was ``whoosh_search.py``, for Whoosh instances only.) Draws the forms
`mixed_load.py` sends (a word, common or rare; the word at one site; the word with the status
"approved"; a phrase of two common words), each ``--queries`` times with its own seed, and
runs each through the server's index (``SearchIndex.search`` with the search page's paging,
facet size and 2 s bound, over the whole study) after warming it as ``etmf serve`` does.

Floor: the bare dependency answering the same question, on at most ``--floor-limit`` of each
form's queries, since it has no time bound. On Whoosh, the same parsed words, the same filter
as a Whoosh filter query, the page's 20 best by BM25F, the total and the five facets as
Whoosh ``groupedby`` counts. On PostgreSQL, two plain statements over the same table and its
indexes: the 20 best matches by ``ts_rank``, then the total and the five facets in one
``GROUPING SETS`` count, both exact (``websearch_to_tsquery``, the same filters).

Prints median, p95, max and how many ours cut at its bound, per form, beside the floor's
median and the ratio; then the median and p95 of the same queries run again (on Whoosh, once
the words' postings are kept; on PostgreSQL, with the rows in its cache).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

FORMS = ("term", "term + one site", "term + status", "phrase of common words")


def draw(form: str, rng: random.Random, sites: list[int]) -> tuple[str, dict[str, Any]]:
    """One query of ``form`` as the mixed load draws it: (text, filters)."""
    from generate import RARE, WORDS

    word = rng.choice(WORDS) if rng.random() < 0.5 else rng.choice(RARE[:500])
    if form == "term":
        return word, {}
    if form == "term + one site":
        return word, {"site_ids": frozenset({rng.choice(sites)})}
    if form == "term + status":
        return word, {"statuses": frozenset({"approved"})}
    return f'"{rng.choice(WORDS)} {rng.choice(WORDS)}"', {}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bare_whoosh(path: Path) -> Any:
    """A function answering (text, filters) with bare Whoosh: page, total, facets."""
    from whoosh import index as windex
    from whoosh import query as wq
    from whoosh import sorting
    from whoosh.qparser import MultifieldParser

    from etmf.search.whoosh_index import FACET_FIELDS, FIELD_BOOSTS, TEXT_FIELDS

    ix = windex.open_dir(str(path))
    parser = MultifieldParser(list(TEXT_FIELDS), ix.schema, fieldboosts=FIELD_BOOSTS)
    facets = {name: sorting.FieldFacet(field) for name, field in FACET_FIELDS.items()}

    def answer(text: str, filters: dict[str, Any]) -> int:
        parts = [wq.Term("study_id", "1")]
        for site in filters.get("site_ids", ()):
            parts.append(wq.Term("site_key", str(site)))
        for status in filters.get("statuses", ()):
            parts.append(wq.Term("status", status))
        with ix.searcher() as searcher:
            results = searcher.search(parser.parse(text), filter=wq.And(parts), limit=20,
                                      groupedby=facets)
            [hit["doc_id"] for hit in results]
            {name: results.groups(name) for name in facets}
            return len(results)

    return answer


def bare_postgres(engine: Any) -> Any:
    """A function answering (text, filters) with two plain SQL statements: page, total and
    facets, exact, on the server's own table and indexes."""
    from sqlalchemy import text as sql

    def answer(words: str, filters: dict[str, Any]) -> int:
        where = "study_id = 1 AND tsv @@ q"
        params: dict[str, Any] = {"words": words}
        if filters.get("site_ids"):
            where += " AND site_id = ANY(:sites)"
            params["sites"] = sorted(filters["site_ids"])
        if filters.get("statuses"):
            where += " AND status = ANY(:statuses)"
            params["statuses"] = sorted(filters["statuses"])
        source = (f"FROM search_documents, websearch_to_tsquery('english', :words) AS q "
                  f"WHERE {where}")
        with engine.connect() as conn:
            conn.execute(sql(f"SELECT document_id, ts_rank(tsv, q) AS r {source} "
                             "ORDER BY r DESC LIMIT 20"), params).all()
            counts = conn.execute(sql(
                "SELECT grouping(zone, artifact_id, site_id, status, "
                "extract(year FROM document_date)) AS g, count(*) AS n "
                f"{source} GROUP BY GROUPING SETS (zone, artifact_id, site_id, status, "
                "extract(year FROM document_date), ())"), params).all()
        # grouping() sets a bit per key not grouped on: 31 (all five) is the () set, the total.
        return next((n for g, n in counts if g == 31), 0)

    return answer


def main(argv: list[str] | None = None) -> None:
    from sqlalchemy import select

    from etmf import create_app
    from etmf.bootstrap import services, shutdown
    from etmf.search.base import Scope, SearchQuery
    from etmf.settings import load_settings
    from etmf.studies.models import Site
    from etmf.web.search import FACET_SHOWN, PER_PAGE, TIME_BUDGET_S

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instance", required=True, type=Path)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--floor-limit", type=int, default=10)
    args = parser.parse_args(argv)

    app = create_app(load_settings(overrides={"instance_path": str(args.instance),
                                              "log_level": "WARNING",
                                              "jobs_runner": "worker"}))
    with app.app_context():
        svc = services(app)
        try:
            index = svc.search
            with svc.db.read_session() as session:
                sites = sorted(session.scalars(select(Site.id).where(Site.study_id == 1)))
            started = time.perf_counter()
            index.warm()
            print(f"{index.describe()}: {index.count():,} documents; warming took "
                  f"{(time.perf_counter() - started) * 1000:.0f} ms", flush=True)
            floor = (bare_whoosh(index.path) if hasattr(index, "path")
                     else bare_postgres(svc.db.engine))
            rows = []
            for n, form in enumerate(FORMS):
                rng = random.Random(args.seed * 100 + n)
                queries = [draw(form, rng, sites) for _ in range(args.queries)]
                ours, cut, floors, kept = [], 0, [], []
                for timings in (ours, kept):
                    for text, filters in queries:
                        started = time.perf_counter()
                        results = index.search(SearchQuery(
                            text=text, scope=Scope(studies={1: None}), limit=PER_PAGE,
                            time_budget_s=TIME_BUDGET_S, facet_values=FACET_SHOWN, **filters))
                        timings.append((time.perf_counter() - started) * 1000)
                        cut += results.timed_out
                for text, filters in queries[:args.floor_limit]:
                    started = time.perf_counter()
                    floor(text, filters)
                    floors.append((time.perf_counter() - started) * 1000)
                rows.append((form, len(ours), statistics.median(ours), percentile(ours, 0.95),
                             max(ours), cut, statistics.median(floors), len(floors),
                             statistics.median(kept), percentile(kept, 0.95)))
                print(f"  {form}: done", flush=True)
        finally:
            shutdown(app)

    print(f"\n{'form':<24} {'n':>3} {'median':>9} {'p95':>9} {'max':>9} {'cut':>4} "
          f"{'floor median (n)':>18} {'ratio':>6} {'kept: median':>13} {'p95':>9}")
    for form, n, median, p95, worst, cut, floor_median, floor_n, k50, k95 in rows:
        print(f"{form:<24} {n:>3} {median:>7.1f}ms {p95:>7.1f}ms {worst:>7.1f}ms {cut:>4} "
              f"{floor_median:>11.1f}ms ({floor_n}) {median / floor_median:>6.2f} "
              f"{k50:>11.1f}ms {k95:>7.1f}ms")


if __name__ == "__main__":
    main()
