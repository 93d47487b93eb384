"""tracking: dashboard caches kept by the events themselves; indexes to regroup one place

The caches were refreshed from the log when the dashboard was viewed; they are now adjusted
in the transaction of every change (etmf.tracking.upkeep). Caches built the old way may lag
behind the log, so their stamps are dropped: the first view rebuilds them.

Revision ID: 0018
Revises: 0016
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_tracking_edl_groups_place", "tracking_edl_groups",
                    ["study_id", "site_id", "country_id"])
    op.create_index("ix_tracking_edl_group_expiry_place", "tracking_edl_group_expiry",
                    ["study_id", "site_id", "country_id"])
    # One document event recounts its (artifact, level, place) cell: a few rows, not a site's.
    op.create_index("ix_documents_study_artifact_place", "documents",
                    ["study_id", "artifact_id", "level", "site_id", "country_id"])
    op.execute("DELETE FROM tracking_cache_stamps")


def downgrade() -> None:
    # The old refresh folds in the events after a stamp: without stamps it rebuilds.
    op.execute("DELETE FROM tracking_cache_stamps")
    op.drop_index("ix_documents_study_artifact_place", table_name="documents")
    op.drop_index("ix_tracking_edl_group_expiry_place", table_name="tracking_edl_group_expiry")
    op.drop_index("ix_tracking_edl_groups_place", table_name="tracking_edl_groups")
