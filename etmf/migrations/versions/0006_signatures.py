"""Electronic signatures: signing profiles, certificates, validations, signature requests.

Revision ID: 0006
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etmf.db import UTCDateTime

revision = "0006"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_profiles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("identity_method", sa.String(80), nullable=True),
        sa.Column("identity_document", sa.String(200), nullable=True),
        sa.Column("identity_notes", sa.Text(), nullable=True),
        sa.Column("identity_verified_at", UTCDateTime(), nullable=True),
        sa.Column("identity_verified_by_id", sa.Integer(), nullable=True),
        sa.Column("identity_verified_by_name", sa.String(200), nullable=True),
        sa.Column("accepted_statement", sa.Text(), nullable=True),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_signing_profiles_user_id_users")),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_signing_profiles")),
    )
    op.create_table(
        "signing_certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("keystore", sa.String(20), nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("fingerprint_sha256", sa.String(64), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=False),
        sa.Column("not_after", UTCDateTime(), nullable=False),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("issued_by_name", sa.String(200), nullable=False),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.Column("revocation_reason", sa.Text(), nullable=True),
        sa.Column("revoked_by_name", sa.String(200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_signing_certificates_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signing_certificates")),
        sa.UniqueConstraint("serial", name=op.f("uq_signing_certificates_serial")),
    )
    op.create_index("ix_signing_certificates_user", "signing_certificates", ["user_id"])
    op.create_table(
        "signature_validations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("checked_by_name", sa.String(200), nullable=False),
        sa.Column("overall", sa.String(20), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_signature_validations_document_id_documents")),
        sa.ForeignKeyConstraint(["version_id"], ["document_versions.id"],
                                name=op.f("fk_signature_validations_version_id_document_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signature_validations")),
    )
    op.create_index("ix_signature_validations_version", "signature_validations", ["version_id"])
    op.create_table(
        "signature_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("source_version_id", sa.Integer(), nullable=False),
        sa.Column("current_version_id", sa.Integer(), nullable=False),
        sa.Column("ordering", sa.String(20), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_by_name", sa.String(200), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("close_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"],
                                name=op.f("fk_signature_requests_study_id_studies")),
        sa.ForeignKeyConstraint(["document_id"], ["documents.id"],
                                name=op.f("fk_signature_requests_document_id_documents")),
        sa.ForeignKeyConstraint(
            ["source_version_id"], ["document_versions.id"],
            name=op.f("fk_signature_requests_source_version_id_document_versions")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signature_requests")),
    )
    op.create_index("ix_signature_requests_document", "signature_requests", ["document_id"])
    op.create_table(
        "signature_request_signers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("printed_name", sa.String(200), nullable=False),
        sa.Column("meaning", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=True),
        sa.Column("auth_method", sa.String(40), nullable=True),
        sa.Column("certificate_serial", sa.String(64), nullable=True),
        sa.Column("level", sa.String(20), nullable=True),
        sa.Column("field_name", sa.String(80), nullable=True),
        sa.Column("signed_version_id", sa.Integer(), nullable=True),
        sa.Column("result_version_id", sa.Integer(), nullable=True),
        sa.Column("declined_at", UTCDateTime(), nullable=True),
        sa.Column("decline_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"], ["signature_requests.id"],
            name=op.f("fk_signature_request_signers_request_id_signature_requests")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_signature_request_signers_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signature_request_signers")),
        sa.UniqueConstraint("request_id", "position",
                            name=op.f("uq_signature_request_signers_request_id_position")),
    )
    op.create_index("ix_signature_request_signers_user", "signature_request_signers",
                    ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_signature_request_signers_user", table_name="signature_request_signers")
    op.drop_table("signature_request_signers")
    op.drop_index("ix_signature_requests_document", table_name="signature_requests")
    op.drop_table("signature_requests")
    op.drop_index("ix_signature_validations_version", table_name="signature_validations")
    op.drop_table("signature_validations")
    op.drop_index("ix_signing_certificates_user", table_name="signing_certificates")
    op.drop_table("signing_certificates")
    op.drop_table("signing_profiles")
