"""PostgreSQL search: partial word indexes over a fixed sample of rows, for estimated counts.

A search with more matches than it counts exactly (20,000) estimates its total and facets
on a sample. A block sample checked the words on each sampled row, reading its out-of-line
word vector: about 20 ms at 250,000 documents for any common word. The sample is now one
row in 128 (or 16 on a smaller table) chosen by a hash of the document id, and each has a
GIN index of its rows' words, so only the sample's matches are read.

Small indexes (a 128th and a 16th of the word index); building them reads the table once.
No reindex. Nothing on SQLite (Whoosh counts its own way).

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from etmf.search.postgres_index import SAMPLE_MODULI, sample_predicate

    # 0002 creates the table from the current definition: on a fresh database the indexes
    # exist already.
    for modulus in SAMPLE_MODULI:
        op.execute(f"CREATE INDEX IF NOT EXISTS ix_search_documents_tsv_1in{modulus} "
                   f"ON search_documents USING gin (tsv) WHERE {sample_predicate(modulus)}")
    op.execute("ANALYZE search_documents")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from etmf.search.postgres_index import SAMPLE_MODULI

    for modulus in SAMPLE_MODULI:
        op.execute(f"DROP INDEX IF EXISTS ix_search_documents_tsv_1in{modulus}")
