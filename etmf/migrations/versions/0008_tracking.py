"""tracking: expected document list, milestone dates, targets, expiry rules, persons

Revision ID: 0008
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = "0003"


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def upgrade() -> None:
    t = "edl_entries"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("artifact_id", sa.String(10), nullable=False),
        sa.Column("zone", sa.String(2), nullable=False),
        sa.Column("required_count", sa.Integer(), nullable=False),
        sa.Column("milestone", sa.String(2), nullable=True),
        sa.Column("placeholder_id", sa.Integer(), nullable=True),
        _fk(t, "study_id", "studies"), _fk(t, "country_id", "countries"),
        _fk(t, "site_id", "sites"), _pk(t),
    )
    op.create_index("ix_edl_entries_study", t, ["study_id", "level"])
    op.create_index("ix_edl_entries_site", t, ["site_id"])
    t = "milestone_dates"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("country_id", sa.Integer(), nullable=True),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(2), nullable=False),
        sa.Column("planned", sa.Date(), nullable=True),
        sa.Column("actual", sa.Date(), nullable=True),
        _fk(t, "study_id", "studies"), _fk(t, "country_id", "countries"),
        _fk(t, "site_id", "sites"), _pk(t),
    )
    op.create_index("ix_milestone_dates_study", t, ["study_id"])
    t = "tracking_targets"
    op.create_table(
        t,
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("filing_days", sa.Integer(), nullable=False),
        sa.Column("approval_days", sa.Integer(), nullable=False),
        sa.Column("expiry_reminders", sa.String(100), nullable=False),
        sa.Column("milestone_reminders", sa.String(100), nullable=False),
        _fk(t, "study_id", "studies"), _pk(t, "study_id"),
    )
    t = "expiry_rules"
    op.create_table(
        t,
        sa.Column("artifact_id", sa.String(10), nullable=False),
        sa.Column("validity_days", sa.Integer(), nullable=False),
        _pk(t, "artifact_id"),
    )
    t = "persons"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        _pk(t),
    )
    t = "person_sites"
    op.create_table(
        t,
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(60), nullable=False),
        _fk(t, "person_id", "persons"), _fk(t, "site_id", "sites"),
        _pk(t, "person_id", "site_id", "role"),
    )
    t = "person_documents"
    op.create_table(
        t,
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        _fk(t, "person_id", "persons"), _fk(t, "document_id", "documents"),
        _pk(t, "person_id", "document_id"),
    )
    op.create_index("ix_person_documents_document", t, ["document_id"])


def downgrade() -> None:
    op.drop_index("ix_person_documents_document", table_name="person_documents")
    op.drop_table("person_documents")
    op.drop_table("person_sites")
    op.drop_table("persons")
    op.drop_table("expiry_rules")
    op.drop_table("tracking_targets")
    op.drop_index("ix_milestone_dates_study", table_name="milestone_dates")
    op.drop_table("milestone_dates")
    op.drop_index("ix_edl_entries_site", table_name="edl_entries")
    op.drop_index("ix_edl_entries_study", table_name="edl_entries")
    op.drop_table("edl_entries")
