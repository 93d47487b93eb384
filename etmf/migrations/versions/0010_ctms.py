"""ctms: study plans, protocol/ICF versions per site, site lifecycle, subjects, consents,
visits, randomization

Revision ID: 0010
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etmf.db import UTCDateTime

revision = "0010"
down_revision = "0005"
branch_labels = None
depends_on = "0003"


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id" if "." not in target else target],
                                   name=op.f(f"fk_{table}_{column}_{target.split('.')[0]}"))


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def _uq(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, name=op.f(f"uq_{table}_{'_'.join(columns)}"))


def upgrade() -> None:
    t = "ctms_study_plans"
    op.create_table(
        t,
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("indication", sa.String(300), nullable=True),
        sa.Column("planned_enrollment", sa.Integer(), nullable=True),
        sa.Column("planned_start", sa.Date(), nullable=True),
        sa.Column("planned_end", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk(t, "study_id", "studies"), _pk(t, "study_id"),
    )
    t = "ctms_document_versions"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("label", sa.String(60), nullable=False),
        sa.Column("document_id", sa.Integer(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        _fk(t, "study_id", "studies"), _fk(t, "document_id", "documents"), _pk(t),
        _uq(t, "study_id", "kind", "label"),
    )
    t = "ctms_site_version_approvals"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("approval_document_id", sa.Integer(), nullable=False),
        sa.Column("approved_on", sa.Date(), nullable=False),
        sa.Column("activated_on", sa.Date(), nullable=True),
        _fk(t, "study_id", "studies"), _fk(t, "site_id", "sites"),
        _fk(t, "version_id", "ctms_document_versions"),
        _fk(t, "approval_document_id", "documents"), _pk(t), _uq(t, "site_id", "version_id"),
    )
    op.create_index("ix_ctms_site_version_approvals_site", t, ["site_id", "kind"])
    t = "ctms_site_plans"
    op.create_table(
        t,
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("enrollment_target", sa.Integer(), nullable=True),
        _fk(t, "site_id", "sites"), _fk(t, "study_id", "studies"), _pk(t, "site_id"),
    )
    t = "ctms_site_status_changes"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=False),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by_name", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _fk(t, "site_id", "sites"), _fk(t, "study_id", "studies"), _pk(t),
    )
    t = "ctms_subjects"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("screened_on", sa.Date(), nullable=False),
        sa.Column("enrolled_on", sa.Date(), nullable=True),
        sa.Column("randomized_on", sa.Date(), nullable=True),
        sa.Column("stratum", sa.String(100), nullable=True),
        sa.Column("arm", sa.String(60), nullable=True),
        sa.Column("ended_on", sa.Date(), nullable=True),
        sa.Column("end_reason", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk(t, "study_id", "studies"), _fk(t, "site_id", "sites"), _pk(t),
        _uq(t, "study_id", "number"),
    )
    op.create_index("ix_ctms_subjects_site", t, ["site_id"])
    t = "ctms_subject_status_changes"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("by_name", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(40), nullable=False),
        _fk(t, "subject_id", "ctms_subjects"), _pk(t),
    )
    t = "ctms_consents"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("icf_version_id", sa.Integer(), nullable=False),
        sa.Column("consented_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_by_name", sa.String(200), nullable=False),
        _fk(t, "subject_id", "ctms_subjects"),
        _fk(t, "icf_version_id", "ctms_document_versions"), _pk(t),
    )
    t = "ctms_visit_definitions"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("window_before", sa.Integer(), nullable=False),
        sa.Column("window_after", sa.Integer(), nullable=False),
        _fk(t, "study_id", "studies"), _pk(t), _uq(t, "study_id", "code"),
    )
    t = "ctms_visits"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("window_start", sa.Date(), nullable=False),
        sa.Column("window_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("completed_on", sa.Date(), nullable=True),
        sa.Column("out_of_window", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(40), nullable=True),
        _fk(t, "subject_id", "ctms_subjects"), _fk(t, "study_id", "studies"),
        _fk(t, "site_id", "sites"), _pk(t), _uq(t, "subject_id", "code"),
    )
    t = "ctms_randomization_lists"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("arms", sa.Text(), nullable=False),
        sa.Column("strata", sa.Text(), nullable=False),
        sa.Column("block_size", sa.Integer(), nullable=False),
        sa.Column("blocks_per_stratum", sa.Integer(), nullable=False),
        sa.Column("seed", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_name", sa.String(200), nullable=False),
        _fk(t, "study_id", "studies"), _pk(t),
    )
    t = "ctms_randomization_slots"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("stratum", sa.String(100), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("block", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(60), nullable=False),
        sa.Column("subject_id", sa.Integer(), nullable=True),
        _fk(t, "list_id", "ctms_randomization_lists"), _fk(t, "subject_id", "ctms_subjects"),
        _pk(t), _uq(t, "list_id", "stratum", "sequence"),
    )


def downgrade() -> None:
    op.drop_table("ctms_randomization_slots")
    op.drop_table("ctms_randomization_lists")
    op.drop_table("ctms_visits")
    op.drop_table("ctms_visit_definitions")
    op.drop_table("ctms_consents")
    op.drop_table("ctms_subject_status_changes")
    op.drop_index("ix_ctms_subjects_site", table_name="ctms_subjects")
    op.drop_table("ctms_subjects")
    op.drop_table("ctms_site_status_changes")
    op.drop_table("ctms_site_plans")
    op.drop_index("ix_ctms_site_version_approvals_site",
                  table_name="ctms_site_version_approvals")
    op.drop_table("ctms_site_version_approvals")
    op.drop_table("ctms_document_versions")
    op.drop_table("ctms_study_plans")
