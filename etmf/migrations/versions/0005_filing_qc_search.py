"""documents: signposts, QC issues, extracted-text cache

Revision ID: 0005
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etmf.db import UTCDateTime

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signpost_system", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("signpost_location", sa.String(length=500),
                                      nullable=True))
    op.create_table(
        "qc_issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("raised_by_id", sa.Integer(), nullable=True),
        sa.Column("raised_by_name", sa.String(length=200), nullable=False),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("answered_by_name", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_qc_issues_document_id_documents")),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"],
                                name=op.f("fk_qc_issues_study_id_studies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qc_issues")),
    )
    with op.batch_alter_table("qc_issues", schema=None) as batch_op:
        batch_op.create_index("ix_qc_issues_study", ["study_id"], unique=False)
        batch_op.create_index("ix_qc_issues_document", ["document_id"], unique=False)
    op.create_table(
        "document_texts",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("pages", sa.Integer(), nullable=True),
        sa.Column("truncated", sa.Boolean(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("extracted_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_document_texts")),
    )


def downgrade() -> None:
    op.drop_table("document_texts")
    with op.batch_alter_table("qc_issues", schema=None) as batch_op:
        batch_op.drop_index("ix_qc_issues_document")
        batch_op.drop_index("ix_qc_issues_study")
    op.drop_table("qc_issues")
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("signpost_location")
        batch_op.drop_column("signpost_system")
