"""The search outbox: documents waiting to be (re-)indexed by a worker.

Revision ID: 0011
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etmf.db import UTCDateTime

revision = "0011"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_outbox",
        sa.Column("document_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("queued_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_search_outbox")),
    )


def downgrade() -> None:
    op.drop_table("search_outbox")
