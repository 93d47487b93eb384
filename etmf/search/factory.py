"""Choosing the search backend from configuration."""

from __future__ import annotations

import os

from sqlalchemy import Engine

from etmf.search.base import SearchError, SearchIndex

BACKENDS = ("whoosh", "postgres")


def open_index(backend: str, *, path: str | os.PathLike[str] | None = None,
               engine: Engine | None = None) -> SearchIndex:
    """Open the configured search index: ``"whoosh"`` (needs ``path``, a folder) or
    ``"postgres"`` (needs ``engine`` on PostgreSQL; the tables come from the migrations)."""
    if backend == "whoosh":
        if path is None:
            raise SearchError("The whoosh search backend needs a folder for its index (path).")
        from etmf.search.whoosh_index import WhooshIndex

        return WhooshIndex(path)
    if backend == "postgres":
        if engine is None:
            raise SearchError("The postgres search backend needs the database engine.")
        from etmf.search.postgres_index import PostgresIndex

        return PostgresIndex(engine)
    raise SearchError(
        f"Unknown search backend {backend!r}: choose one of {', '.join(BACKENDS)}."
    )
