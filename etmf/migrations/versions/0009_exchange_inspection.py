"""exchange and inspection: imported EMS packages, objects, source audit records; inspection
requests

Revision ID: 0009
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etmf.db import UTCDateTime

revision = "0009"
down_revision = "0006"
branch_labels = None
depends_on = "0005"


def upgrade() -> None:
    op.create_table(
        "exchange_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("package_sha256", sa.String(64), nullable=False),
        sa.Column("transfer_id", sa.String(200), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("imported_by_name", sa.String(200), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"],
                                name=op.f("fk_exchange_packages_study_id_studies")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_packages")),
        sa.UniqueConstraint("study_id", "package_sha256",
                            name=op.f("uq_exchange_packages_study_id")),
    )
    op.create_table(
        "exchange_objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("object_id", sa.String(300), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"],
                                name=op.f("fk_exchange_objects_study_id_studies")),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_exchange_objects_document_id_documents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_objects")),
        sa.UniqueConstraint("study_id", "source_id", "object_id",
                            name=op.f("uq_exchange_objects_study_id")),
    )
    op.create_table(
        "exchange_audit_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("version_label", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("record_id", sa.String(200), nullable=False),
        sa.Column("occurred_at", sa.String(40), nullable=False),
        sa.Column("user_ref", sa.String(200), nullable=False),
        sa.Column("entry_type", sa.String(40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_exchange_audit_records_document_id_documents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exchange_audit_records")),
    )
    op.create_index("ix_exchange_audit_records_document", "exchange_audit_records",
                    ["document_id"])
    op.create_table(
        "inspection_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("raised_at", UTCDateTime(), nullable=False),
        sa.Column("raised_by_id", sa.Integer(), nullable=True),
        sa.Column("raised_by_name", sa.String(200), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answer_document_id", sa.Integer(), nullable=True),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("answered_by_id", sa.Integer(), nullable=True),
        sa.Column("answered_by_name", sa.String(200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"],
                                name=op.f("fk_inspection_requests_study_id_studies")),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_inspection_requests_document_id_documents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inspection_requests")),
    )
    op.create_index("ix_inspection_requests_study", "inspection_requests", ["study_id"])


def downgrade() -> None:
    op.drop_index("ix_inspection_requests_study", table_name="inspection_requests")
    op.drop_table("inspection_requests")
    op.drop_index("ix_exchange_audit_records_document", table_name="exchange_audit_records")
    op.drop_table("exchange_audit_records")
    op.drop_table("exchange_objects")
    op.drop_table("exchange_packages")
