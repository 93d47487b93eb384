"""monitoring: follow-up letters, the "after N new subjects" rule, report target days, and
daily key-risk-indicator snapshots (the trend)

Revision ID: 0017
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0015"
branch_labels = None
depends_on = None


#: On SQLite a batch rebuilds the table from its reflection; the tables it refers to need not
#: be reflected (documents carries an expression index that reflection cannot read).
_BATCH = {"reflect_kwargs": {"resolve_fks": False}}


def upgrade() -> None:
    with op.batch_alter_table("ctms_monitoring_rules", **_BATCH) as batch:
        batch.alter_column("interval_weeks", existing_type=sa.Integer(), nullable=True)
        batch.add_column(sa.Column("every_subjects", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("report_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("ctms_monitoring_visits", **_BATCH) as batch:
        batch.add_column(sa.Column("letter_document_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("letter_request_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(op.f("fk_ctms_monitoring_visits_letter_document_id_documents"),
                                 "documents", ["letter_document_id"], ["id"])
    t = "ctms_kri_snapshots"
    op.create_table(
        t,
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("indicator", sa.String(40), nullable=False),
        sa.Column("taken_on", sa.Date(), nullable=False),
        sa.Column("value", sa.String(20), nullable=True),
        sa.Column("level", sa.String(10), nullable=False),
        sa.ForeignKeyConstraint(["study_id"], ["studies.id"],
                                name=op.f("fk_ctms_kri_snapshots_study_id_studies")),
        sa.ForeignKeyConstraint(["site_id"], ["sites.id"],
                                name=op.f("fk_ctms_kri_snapshots_site_id_sites")),
        sa.PrimaryKeyConstraint("site_id", "indicator", "taken_on",
                                name=op.f("pk_ctms_kri_snapshots")),
    )
    op.create_index("ix_ctms_kri_snapshots_study_taken", t, ["study_id", "taken_on"])


def downgrade() -> None:
    op.drop_index("ix_ctms_kri_snapshots_study_taken", table_name="ctms_kri_snapshots")
    op.drop_table("ctms_kri_snapshots")
    with op.batch_alter_table("ctms_monitoring_visits", **_BATCH) as batch:
        batch.drop_constraint(op.f("fk_ctms_monitoring_visits_letter_document_id_documents"),
                              type_="foreignkey")
        batch.drop_column("letter_request_id")
        batch.drop_column("letter_document_id")
    with op.batch_alter_table("ctms_monitoring_rules", **_BATCH) as batch:
        batch.drop_column("report_days")
        batch.drop_column("every_subjects")
        batch.alter_column("interval_weeks", existing_type=sa.Integer(), nullable=False)
