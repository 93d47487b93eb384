"""ctms: site payments (contracts, rates, batches, items, lines), EDC import log, and the
randomization seed sealed (the read table keeps the sealed form)

Revision ID: 0012
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etmf.db import UTCDateTime

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def _pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*(columns or ("id",)), name=op.f(f"pk_{table}"))


def _uq(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, name=op.f(f"uq_{table}_{'_'.join(columns)}"))


def upgrade() -> None:
    with op.batch_alter_table("ctms_randomization_lists") as batch:
        batch.alter_column("seed", type_=sa.Text(), existing_type=sa.String(100),
                           existing_nullable=False)
        batch.add_column(sa.Column("seed_sealed", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))
    t = "ctms_payment_contracts"
    op.create_table(
        t,
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("enrolled_fee", sa.Integer(), nullable=False),
        sa.Column("screen_failure_fee", sa.Integer(), nullable=False),
        sa.Column("holdback_bp", sa.Integer(), nullable=False),
        sa.Column("payee_name", sa.String(200), nullable=False),
        sa.Column("payee_iban", sa.String(34), nullable=True),
        sa.Column("payee_bic", sa.String(11), nullable=True),
        sa.Column("document_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by_name", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk(t, "site_id", "sites"), _fk(t, "study_id", "studies"),
        _fk(t, "document_id", "documents"), _pk(t, "site_id"),
    )
    t = "ctms_payment_rates"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.Column("visit_code", sa.String(20), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        _fk(t, "site_id", "sites"), _pk(t), _uq(t, "site_id", "kind", "code", "visit_code"),
    )
    t = "ctms_payment_batches"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_name", sa.String(200), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("approved_by_name", sa.String(200), nullable=True),
        sa.Column("exported_at", UTCDateTime(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        _fk(t, "study_id", "studies"), _pk(t), _uq(t, "study_id", "number"),
    )
    t = "ctms_payment_items"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("gross", sa.Integer(), nullable=False),
        sa.Column("holdback", sa.Integer(), nullable=False),
        sa.Column("net", sa.Integer(), nullable=False),
        sa.Column("paid_amount", sa.Integer(), nullable=True),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("invoice_document_id", sa.Integer(), nullable=True),
        sa.Column("receipt_document_id", sa.Integer(), nullable=True),
        _fk(t, "batch_id", "ctms_payment_batches"), _fk(t, "site_id", "sites"),
        _fk(t, "invoice_document_id", "documents"), _fk(t, "receipt_document_id", "documents"),
        _pk(t), _uq(t, "batch_id", "site_id"),
    )
    t = "ctms_payment_lines"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("batch_id", sa.Integer(), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("description", sa.String(300), nullable=False),
        sa.Column("activity_on", sa.Date(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        _fk(t, "item_id", "ctms_payment_items"), _fk(t, "batch_id", "ctms_payment_batches"),
        _fk(t, "site_id", "sites"), _pk(t), _uq(t, "site_id", "key"),
    )
    op.create_index("ix_ctms_payment_lines_batch", "ctms_payment_lines", ["batch_id"])
    t = "ctms_edc_imports"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("study_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("changes", sa.Integer(), nullable=False),
        sa.Column("problems", sa.Integer(), nullable=False),
        sa.Column("imported_at", UTCDateTime(), nullable=False),
        sa.Column("imported_by_name", sa.String(200), nullable=False),
        _fk(t, "study_id", "studies"), _pk(t),
    )


def downgrade() -> None:
    op.drop_table("ctms_edc_imports")
    op.drop_index("ix_ctms_payment_lines_batch", table_name="ctms_payment_lines")
    op.drop_table("ctms_payment_lines")
    op.drop_table("ctms_payment_items")
    op.drop_table("ctms_payment_batches")
    op.drop_table("ctms_payment_rates")
    op.drop_table("ctms_payment_contracts")
    with op.batch_alter_table("ctms_randomization_lists") as batch:
        batch.drop_column("seed_sealed")
        batch.alter_column("seed", type_=sa.String(100), existing_type=sa.Text(),
                           existing_nullable=False)
