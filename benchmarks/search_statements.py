"""Search on a generated PostgreSQL instance, statement by statement.

    .venv/bin/python benchmarks/search_statements.py \\
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/etmf_scale_250k [--runs 8]

Runs ``PostgresIndex.search`` (the app's own call, 2 s bound) for a common term, the term
with a status filter, a term at one site, a phrase of common words and a word that matches
nothing, over the whole study, and prints the median time of the call and of each SQL
statement it sent. What `mixed_load.py --only search` costs per request, taken apart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUERIES: list[tuple[str, dict[str, Any]]] = [
    ("protocol", {}),
    ("protocol", {"statuses": frozenset({"approved"})}),
    ("monitoring", {"site_ids": frozenset({7})}),
    ('"site visit"', {}),
    ("bafokazu", {}),
]


def main(argv: list[str] | None = None) -> None:
    from etmf.search.base import Scope, SearchQuery
    from etmf.search.postgres_index import PostgresIndex

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=8)
    args = parser.parse_args(argv)
    engine = create_engine(args.database_url)
    statements: dict[str, list[float]] = {}
    current: dict[str, Any] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def _before(_conn: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        current["t"], current["s"] = time.perf_counter(), " ".join(statement.split())[:60]

    @event.listens_for(engine, "after_cursor_execute")
    def _after(*_rest: Any) -> None:
        statements.setdefault(current["s"], []).append(time.perf_counter() - current["t"])

    index = PostgresIndex(engine)
    for text, filters in QUERIES:
        statements.clear()
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            results = index.search(SearchQuery(text=text, scope=Scope(studies={1: None}),
                                               **filters))
            times.append(time.perf_counter() - started)
        print(f"{text} {filters or ''}: median {statistics.median(times) * 1000:.1f} ms, "
              f"total {results.total}{' (estimated)' if results.total_estimated else ''}"
              f"{' TIMED OUT' if results.timed_out else ''}")
        for statement, spent in statements.items():
            print(f"    {statistics.median(spent) * 1000:7.1f} ms  {statement}")
    engine.dispose()


if __name__ == "__main__":
    main()
