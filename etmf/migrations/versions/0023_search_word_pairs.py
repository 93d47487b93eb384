"""PostgreSQL search: adjacent word pairs (``word_pairs``) so phrases use an index.

A phrase needs word positions, which the GIN index on ``tsv`` does not hold: PostgreSQL
reads every row holding all of a phrase's words to check their order. Two common words that
rarely stand together ("dose site") took 1.6 s at 250,000 documents. ``word_pairs`` holds
each pair of lexemes at adjacent positions, made by ``etmf_adjacent_pairs`` from the same
vector as ``tsv``, under a GIN index of its own.

A generated column: existing rows get it when this runs (the table is rewritten once,
about three minutes at 250,000 documents on two cores); no reindex. Nothing on SQLite
(Whoosh there keeps positions).

Revision ID: 0023
Revises: 0019
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from etmf.search.postgres_index import ADJACENT_PAIRS_FUNCTION, WORD_PAIRS_EXPRESSION

    op.execute(ADJACENT_PAIRS_FUNCTION)
    # 0002 creates the table from the current definition: on a fresh database the column
    # and its index exist already.
    op.execute("ALTER TABLE search_documents ADD COLUMN IF NOT EXISTS word_pairs text[] "
               f"GENERATED ALWAYS AS ({WORD_PAIRS_EXPRESSION}) STORED")
    op.execute("CREATE INDEX IF NOT EXISTS ix_search_documents_word_pairs "
               "ON search_documents USING gin (word_pairs)")
    op.execute("ANALYZE search_documents")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    op.execute("DROP INDEX IF EXISTS ix_search_documents_word_pairs")
    op.execute("ALTER TABLE search_documents DROP COLUMN IF EXISTS word_pairs")
    op.execute("DROP FUNCTION IF EXISTS etmf_adjacent_pairs(tsvector)")
