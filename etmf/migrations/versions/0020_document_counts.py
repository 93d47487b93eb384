"""documents: the TMF tree's counts (a cache kept with every flush), and an index that reads
the document list in date order and counts a date range from the index alone

Revision ID: 0020
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0005"
branch_labels = None
depends_on = None

def upgrade() -> None:
    t = "document_counts"
    op.create_table(
        t,
        sa.Column("study_id", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("site_key", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("country_key", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("artifact_id", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("zone", sa.String(2), nullable=False),
        sa.Column("section", sa.String(5), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("study_id", "site_key", "country_key", "artifact_id", "status",
                                name=op.f(f"pk_{t}")),
    )
    op.create_index("ix_document_counts_country", t, ["study_id", "country_key"])
    # Existing documents: the same rows etmf.documents.counts.rebuild makes.
    op.execute(
        "INSERT INTO document_counts (study_id, country_key, site_key, artifact_id, status, "
        "zone, section, n) SELECT study_id, COALESCE(country_id, 0), COALESCE(site_id, 0), "
        "artifact_id, status, zone, section, COUNT(*) FROM documents GROUP BY study_id, "
        "COALESCE(country_id, 0), COALESCE(site_id, 0), artifact_id, status, zone, section")
    op.execute(
        "INSERT INTO document_counts (study_id, country_key, site_key, artifact_id, status, "
        "zone, section, n) SELECT study_id, -1, -1, artifact_id, status, zone, section, "
        "COUNT(*) FROM documents GROUP BY study_id, artifact_id, status, zone, section")
    # A date range (with any of the list's other filters) is read in date order and counted
    # from this index alone; it starts with the columns of ix_documents_study_date.
    op.create_index("ix_documents_study_date_place", "documents", [
        "study_id", "document_date", "status", "country_id", "site_id", "zone", "artifact_id"])
    op.drop_index("ix_documents_study_date", table_name="documents")
    if op.get_bind().dialect.name == "postgresql":
        # PostgreSQL puts NULLs last ascending, first descending: newest first with undated
        # last needs its own order (SQLite reads both from the index above).
        op.execute("CREATE INDEX ix_documents_study_date_desc ON documents "
                   "(study_id, document_date DESC NULLS LAST, id DESC)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_documents_study_date_desc")
    op.create_index("ix_documents_study_date", "documents", ["study_id", "document_date"])
    op.drop_index("ix_documents_study_date_place", table_name="documents")
    op.drop_index("ix_document_counts_country", table_name="document_counts")
    op.drop_table("document_counts")
