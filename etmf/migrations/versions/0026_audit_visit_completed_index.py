"""A partial index of the audit log's EDC visit completions, for the data-entry lag.

The key risk indicators' data-entry lag reads the ``visit.completed`` events of a study (the
import date is the event's time). Through the study index that walked every event of the
study: 720 ms at 1,090,000 events. The partial index holds those events only. The log stays
append-only; the index is written only when such an event is.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    from etmf.audit.models import VISIT_COMPLETED_PREDICATE

    op.execute("CREATE INDEX IF NOT EXISTS ix_audit_events_visit_completed "
               f"ON audit_events (study_id, seq) WHERE {VISIT_COMPLETED_PREDICATE}")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_audit_events_visit_completed")
