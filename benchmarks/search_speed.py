"""Search speed: our SearchIndex backends beside the bare library doing the same query.

Builds N seeded synthetic documents (lognormal lengths, a Zipf vocabulary: a few very common
words, a long tail of rare ones) into each backend, then times three queries, each through
``SearchIndex.search`` (scope, filters, facets, totals, snippets, time bound) and through the
bare library (Whoosh ``searcher.search`` with the same parsed query; a bare SQL tsquery
SELECT), in the same run:

    term      a mid-frequency word
    filtered  the same word, zone 05 and status approved
    phrase    "patient study visit", three of the commonest words

Usage:
    .venv/bin/python benchmarks/search_speed.py --docs 20000 \
        --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Without --database-url only Whoosh runs. PostgreSQL work happens in a throwaway schema, or
with ``--keep-schema NAME`` in that schema, kept afterwards and reused when it already holds
``--docs`` documents (building 100,000 takes minutes; iterate on queries without it).
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta

from sqlalchemy import Engine, create_engine, text
from whoosh.qparser import MultifieldParser

from etmf.search import Scope, SearchDoc, SearchIndex, SearchQuery
from etmf.search.postgres_index import PostgresIndex, create_schema
from etmf.search.whoosh_index import FIELD_BOOSTS, TEXT_FIELDS, WhooshIndex

COMMON = ["patient", "study", "visit", "site", "protocol", "report", "data", "dose",
          "safety", "consent", "monitor", "review", "sample", "record", "investigator"]
ZONES = ["01", "02", "03", "04", "05", "06", "08", "09", "10", "11"]
STATUSES = ["draft", "in_qc", "approved", "approved", "approved", "superseded"]
SYLLABLES = ["ka", "to", "ri", "men", "sol", "var", "pe", "lu", "dor", "an", "ex", "qui",
             "zo", "bel", "tra", "vi", "nor", "ca", "sti", "mo"]
PHRASE = '"patient study visit"'
BATCH = 500
STUDY = 1


def vocabulary(rng: random.Random, size: int) -> list[str]:
    """COMMON first (highest ranks), then made-up words of 2-4 syllables."""
    words = list(COMMON)
    seen = set(words)
    while len(words) < size:
        word = "".join(rng.choices(SYLLABLES, k=rng.randint(2, 4)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def synthetic_docs(count: int, seed: int) -> Iterator[SearchDoc]:
    rng = random.Random(seed)
    vocab = vocabulary(rng, 30_000)
    cumulative = list(itertools.accumulate(1.0 / (rank ** 1.05) for rank in range(1, len(vocab) + 1)))
    start = date(2018, 1, 1)
    for n in range(1, count + 1):
        length = min(int(rng.lognormvariate(math.log(300), 0.9)) + 20, 20_000)
        words = rng.choices(vocab, cum_weights=cumulative, k=length)
        if rng.random() < 0.05:
            at = rng.randrange(len(words))
            words[at:at] = ["patient", "study", "visit"]
        zone = rng.choice(ZONES)
        yield SearchDoc(
            document_id=n, study_id=STUDY, country=rng.choice(["DE", "FR", "US", None]),
            site_id=rng.choice([None, 10, 11, 12, 13]), zone=zone, section=f"{zone}.01",
            artifact_id=f"{zone}.01.0{rng.randint(1, 5)}", artifact_name="Synthetic artifact",
            title=" ".join(rng.choices(vocab[:3000], k=5)).title(),
            status=rng.choice(STATUSES),
            document_date=start + timedelta(days=rng.randrange(2200)),
            person=rng.choice(["Alice Moreau", "Bruno Keller", None]), language="en",
            version_label="1.0", text=" ".join(words),
        )


def pick_term(seed: int) -> str:
    """A mid-frequency word (rank 200 of the vocabulary)."""
    return vocabulary(random.Random(seed), 30_000)[200]


def build(index: SearchIndex, count: int, seed: int) -> float:
    """Index everything in batches; returns documents per second."""
    started = time.perf_counter()
    batch: list[SearchDoc] = []
    for doc in synthetic_docs(count, seed):
        batch.append(doc)
        if len(batch) == BATCH:
            index.index(batch)
            batch = []
    if batch:
        index.index(batch)
    return count / (time.perf_counter() - started)


def timed(run: Callable[[], object], repeat: int) -> tuple[float, float, int]:
    """p50 and p95 in ms, and how many runs came back cut short by the time bound."""
    run()  # warm caches once
    samples = []
    cut = 0
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        samples.append((time.perf_counter() - started) * 1000)
        cut += bool(getattr(result, "timed_out", False))
    samples.sort()
    return statistics.median(samples), samples[max(int(len(samples) * 0.95) - 1, 0)], cut


def queries(term: str, budget: float) -> dict[str, SearchQuery]:
    scope = Scope({STUDY: None})
    return {
        "term": SearchQuery(term, scope, time_budget_s=budget),
        "filtered": SearchQuery(term, scope, zones=frozenset({"05"}),
                                statuses=frozenset({"approved"}), time_budget_s=budget),
        "phrase": SearchQuery(PHRASE, scope, time_budget_s=budget),
    }


def whoosh_bare(index: WhooshIndex, query: SearchQuery) -> Callable[[], object]:
    from whoosh import query as wq

    ix = index._ix  # the bare library on the very same index
    parser = MultifieldParser(TEXT_FIELDS, ix.schema, fieldboosts=FIELD_BOOSTS)
    parsed = parser.parse(query.text)
    filters = []
    if query.zones:
        filters.append(wq.Or([wq.Term("zone", z) for z in query.zones]))
    if query.statuses:
        filters.append(wq.Or([wq.Term("status", s) for s in query.statuses]))
    final = wq.And([parsed, *filters]) if filters else parsed

    def run() -> object:
        with ix.searcher() as searcher:
            return [hit["doc_id"] for hit in searcher.search(final, limit=query.limit)]
    return run


def postgres_bare(engine: Engine, query: SearchQuery) -> Callable[[], object]:
    extra = ""
    params: dict[str, object] = {"q": query.text, "limit": query.limit}
    if query.zones:
        extra += " AND zone = ANY(:zones)"
        params["zones"] = sorted(query.zones)
    if query.statuses:
        extra += " AND status = ANY(:statuses)"
        params["statuses"] = sorted(query.statuses)
    sql = text(
        "SELECT document_id FROM search_documents, websearch_to_tsquery('english', :q) q "
        f"WHERE tsv @@ q{extra} ORDER BY ts_rank(tsv, q, 1) DESC LIMIT :limit"
    )

    def run() -> object:
        with engine.connect() as conn:
            return conn.execute(sql, params).all()
    return run


def report(backend: str, name: str, ours: tuple[float, float, int],
           bare: tuple[float, float, int], results: object, repeat: int) -> None:
    total = getattr(results, "total", "?")
    if getattr(results, "total_estimated", False):
        total = f"about {total}"
    print(f"{backend:9} {name:9} ours p50 {ours[0]:8.1f} ms p95 {ours[1]:8.1f} ms | "
          f"bare p50 {bare[0]:8.1f} ms p95 {bare[1]:8.1f} ms | total {total} | "
          f"cut by the bound in {ours[2]} of {repeat} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--budget", type=float, default=2.0,
                        help="time bound of our searches in seconds (the app's default: 2)")
    parser.add_argument("--skip-whoosh", action="store_true")
    parser.add_argument("--keep-schema", default=None,
                        help="PostgreSQL schema to build into and keep (reused if complete)")
    args = parser.parse_args()
    term = pick_term(args.seed)
    print(f"{args.docs} documents, seed {args.seed}, term {term!r}, phrase {PHRASE}")

    if not args.skip_whoosh:
        with tempfile.TemporaryDirectory() as folder:
            index = WhooshIndex(folder)
            print(f"whoosh    indexing {build(index, args.docs, args.seed):8.0f} docs/s")
            for name, query in queries(term, args.budget).items():
                ours = timed(lambda q=query: index.search(q), args.repeat)
                bare = timed(whoosh_bare(index, query), args.repeat)
                report("whoosh", name, ours, bare, index.search(query), args.repeat)

    if args.database_url:
        schema = args.keep_schema or f"search_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.database_url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        engine = create_engine(args.database_url,
                               connect_args={"options": f"-csearch_path={schema}"})
        try:
            create_schema(engine)
            pg = PostgresIndex(engine)
            if pg.count() == args.docs:
                print(f"postgres  reusing the {args.docs} documents in schema {schema}")
            else:
                pg.clear()
                print(f"postgres  indexing {build(pg, args.docs, args.seed):8.0f} docs/s")
                with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                    conn.execute(text("VACUUM ANALYZE search_documents"))
            for name, query in queries(term, args.budget).items():
                ours = timed(lambda q=query: pg.search(q), args.repeat)
                bare = timed(postgres_bare(engine, query), args.repeat)
                report("postgres", name, ours, bare, pg.search(query), args.repeat)
        finally:
            engine.dispose()
            if not args.keep_schema:
                with admin.begin() as conn:
                    conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin.dispose()


if __name__ == "__main__":
    main()
