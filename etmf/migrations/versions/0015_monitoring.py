"""monitoring: monitoring visits, findings, action items, deviations, SAEs, KRI thresholds

Revision ID: 0015
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0010"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def upgrade() -> None:
    t = "ctms_monitoring_rules"
    op.create_table(t, sa.Column("study_id", sa.Integer(), nullable=False),
                    sa.Column("interval_weeks", sa.Integer(), nullable=False),
                    _fk(t, "study_id", "studies"), _pk(t, "study_id"))
    t = "ctms_monitoring_visits"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("planned_on", sa.Date(), nullable=False),
        sa.Column("cra_user_id", sa.Integer(), nullable=False),
        sa.Column("cra_name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("visited_on", sa.Date(), nullable=True),
        sa.Column("attendees", sa.Text(), nullable=True),
        sa.Column("subjects_reviewed", sa.Text(), nullable=True),
        sa.Column("documents_reviewed", sa.Text(), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("report_document_id", sa.Integer(), nullable=True),
        sa.Column("signature_request_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk(t, "study_id", "studies"), _fk(t, "site_id", "sites"),
        _fk(t, "cra_user_id", "users"), _fk(t, "report_document_id", "documents"), _pk(t),
    )
    op.create_index("ix_ctms_monitoring_visits_site", t, ["site_id"])
    t = "ctms_monitoring_findings"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _fk(t, "visit_id", "ctms_monitoring_visits"), _pk(t),
    )
    t = "ctms_action_items"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        _fk(t, "visit_id", "ctms_monitoring_visits"), _fk(t, "study_id", "studies"),
        _fk(t, "site_id", "sites"), _pk(t),
    )
    t = "ctms_deviations"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("identified_on", sa.Date(), nullable=False),
        sa.Column("important", sa.Boolean(), nullable=False),
        sa.Column("capa", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reviewed_by", sa.String(200), nullable=True),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk(t, "study_id", "studies"), _fk(t, "site_id", "sites"),
        _fk(t, "subject_id", "ctms_subjects"), _pk(t),
    )
    op.create_index("ix_ctms_deviations_site", t, ["site_id"])
    t = "ctms_sae_clocks"
    op.create_table(t, sa.Column("study_id", sa.Integer(), nullable=False),
                    sa.Column("fatal_days", sa.Integer(), nullable=False),
                    sa.Column("other_days", sa.Integer(), nullable=False),
                    _fk(t, "study_id", "studies"), _pk(t, "study_id"))
    t = "ctms_saes"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        sa.Column("term", sa.String(300), nullable=False),
        sa.Column("seriousness", sa.String(200), nullable=False),
        sa.Column("fatal", sa.Boolean(), nullable=False),
        sa.Column("life_threatening", sa.Boolean(), nullable=False),
        sa.Column("expected", sa.Boolean(), nullable=False),
        sa.Column("awareness_on", sa.Date(), nullable=False),
        sa.Column("clock_days", sa.Integer(), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("submitted_on", sa.Date(), nullable=True),
        sa.Column("report_document_id", sa.Integer(), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk(t, "study_id", "studies"), _fk(t, "site_id", "sites"),
        _fk(t, "subject_id", "ctms_subjects"), _fk(t, "report_document_id", "documents"),
        _pk(t),
    )
    t = "ctms_kri_thresholds"
    op.create_table(t, sa.Column("study_id", sa.Integer(), nullable=False),
                    sa.Column("indicator", sa.String(40), nullable=False),
                    sa.Column("amber", sa.String(20), nullable=False),
                    sa.Column("red", sa.String(20), nullable=False),
                    _fk(t, "study_id", "studies"), _pk(t, "study_id", "indicator"))


def downgrade() -> None:
    op.drop_table("ctms_kri_thresholds")
    op.drop_table("ctms_saes")
    op.drop_table("ctms_sae_clocks")
    op.drop_index("ix_ctms_deviations_site", table_name="ctms_deviations")
    op.drop_table("ctms_deviations")
    op.drop_table("ctms_action_items")
    op.drop_table("ctms_monitoring_findings")
    op.drop_index("ix_ctms_monitoring_visits_site", table_name="ctms_monitoring_visits")
    op.drop_table("ctms_monitoring_visits")
    op.drop_table("ctms_monitoring_rules")
