"""Full-text search over TMF documents behind the :class:`SearchIndex` protocol.

Backends: Whoosh (embedded default) and PostgreSQL full-text search (production); choose with
:func:`open_index`. Write through :class:`BatchingIndexer`, never per request.
"""

from etmf.search.base import (
    SCHEMA_VERSION,
    Hit,
    SchemaMismatch,
    Scope,
    SearchDoc,
    SearchError,
    SearchIndex,
    SearchQuery,
    SearchResults,
    SearchUnavailable,
)
from etmf.search.factory import open_index
from etmf.search.indexer import BatchingIndexer

__all__ = [
    "SCHEMA_VERSION",
    "BatchingIndexer",
    "Hit",
    "SchemaMismatch",
    "Scope",
    "SearchDoc",
    "SearchError",
    "SearchIndex",
    "SearchQuery",
    "SearchResults",
    "SearchUnavailable",
    "open_index",
]
