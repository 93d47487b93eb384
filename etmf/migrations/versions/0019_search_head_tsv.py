"""PostgreSQL search: a small title-and-metadata tsvector (``head_tsv``) for ranking.

Ranking every match by the full ``tsv`` reads (detoasts) the body vector of each match: at
100,000 documents a common word costs seconds. ``head_tsv`` holds only the title, artifact
name (weight A) and metadata (B), small enough to stay in the table row, with its own GIN
index; the search ranks candidates by it and only a capped set by the full vector.

A generated column: existing rows get it when this runs (the table is rewritten once); no
reindex. Nothing on SQLite (Whoosh there).

Revision ID: 0019
Revises: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0019"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from etmf.search.postgres_index import HEAD_TSV_EXPRESSION

    # 0002 creates the table from the current definition: on a fresh database the column
    # and its index exist already.
    op.execute("ALTER TABLE search_documents ADD COLUMN IF NOT EXISTS head_tsv tsvector "
               f"GENERATED ALWAYS AS ({HEAD_TSV_EXPRESSION}) STORED")
    op.execute("CREATE INDEX IF NOT EXISTS ix_search_documents_head_tsv "
               "ON search_documents USING gin (head_tsv)")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_search_documents_head_tsv")
    op.execute("ALTER TABLE search_documents DROP COLUMN IF EXISTS head_tsv")
