"""Single sign-on: external identities (provider, subject) linked to accounts.

Revision ID: 0014
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from etmf.db import UTCDateTime

revision = "0014"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sso_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_sso_identities_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sso_identities")),
        sa.UniqueConstraint("provider", "subject", name=op.f("uq_sso_identities_subject")),
    )
    op.create_index(op.f("ix_sso_identities_user_id"), "sso_identities", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sso_identities_user_id"), table_name="sso_identities")
    op.drop_table("sso_identities")
