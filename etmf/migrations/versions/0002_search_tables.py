"""PostgreSQL full-text search tables (production search backend); nothing on SQLite.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite installations search with Whoosh
    # The search package owns these tables and their schema version; at this revision the
    # definition is the one in etmf.search.postgres_index (schema version 1).
    from etmf.search.postgres_index import _stamp_version, search_metadata

    search_metadata.create_all(bind)
    _stamp_version(bind)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from etmf.search.postgres_index import search_metadata

    search_metadata.drop_all(bind)
