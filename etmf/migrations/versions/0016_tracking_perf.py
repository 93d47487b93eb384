"""tracking: dashboard caches (document counts and day histograms) and a milestone index

Revision ID: 0016
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etmf.db import UTCDateTime

revision = "0016"
down_revision = "0008"
branch_labels = None
depends_on = None


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=op.f(f"pk_{table}"))


def upgrade() -> None:
    t = "tracking_doc_counts"
    op.create_table(
        t,
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.String(10), nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("place", sa.Integer(), nullable=False),
        sa.Column("filed", sa.Integer(), nullable=False),
        sa.Column("approved", sa.Integer(), nullable=False),
        sa.Column("in_qc", sa.Integer(), nullable=False),
        sa.Column("approved_ever", sa.Integer(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=True),
        _pk(t, "study_id", "artifact_id", "level", "place"),
    )
    t = "tracking_doc_days"
    op.create_table(
        t,
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("artifact_id", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        _pk(t, "study_id", "artifact_id", "kind", "value"),
    )
    op.create_index("ix_tracking_doc_days_kind", t, ["study_id", "kind", "value"])
    def place() -> list[sa.Column]:  # type: ignore[type-arg]
        return [sa.Column("zone", sa.String(2), nullable=False),
                sa.Column("site_id", sa.Integer(), nullable=True),
                sa.Column("country_id", sa.Integer(), nullable=True),
                sa.Column("milestone", sa.String(2), nullable=True)]

    t = "tracking_edl_groups"
    op.create_table(
        t,
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        *place(),
        sa.Column("due", sa.Date(), nullable=True),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in (
            "entries", "expected", "approved", "missing", "not_approved", "incomplete")),
        _pk(t, "study_id", "row"),
    )
    t = "tracking_edl_group_expiry"
    op.create_table(
        t,
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("row", sa.Integer(), nullable=False),
        *place(),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        _pk(t, "study_id", "row"),
    )
    t = "tracking_qc_queue"
    op.create_table(
        t,
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("since", UTCDateTime(), nullable=True),
        _pk(t, "document_id"),
    )
    op.create_index("ix_tracking_qc_queue_since", t, ["study_id", "since"])
    t = "tracking_cache_stamps"
    op.create_table(
        t,
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        _pk(t, "study_id"),
    )
    roles = "study_manager,tmf_specialist,site_staff"
    with op.batch_alter_table("tracking_targets") as batch:
        batch.add_column(sa.Column("expiry_roles", sa.String(200), nullable=False,
                                   server_default=roles))
        batch.add_column(sa.Column("milestone_roles", sa.String(200), nullable=False,
                                   server_default=roles))
    op.create_index("ix_milestone_dates_code", "milestone_dates",
                    ["study_id", "code", "site_id", "country_id"])


def downgrade() -> None:
    op.drop_index("ix_milestone_dates_code", table_name="milestone_dates")
    with op.batch_alter_table("tracking_targets") as batch:
        batch.drop_column("milestone_roles")
        batch.drop_column("expiry_roles")
    op.drop_table("tracking_cache_stamps")
    op.drop_index("ix_tracking_qc_queue_since", table_name="tracking_qc_queue")
    op.drop_table("tracking_qc_queue")
    op.drop_table("tracking_edl_group_expiry")
    op.drop_table("tracking_edl_groups")
    op.drop_index("ix_tracking_doc_days_kind", table_name="tracking_doc_days")
    op.drop_table("tracking_doc_days")
    op.drop_table("tracking_doc_counts")
