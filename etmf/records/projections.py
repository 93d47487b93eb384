"""Integrity alerts change no read table: the audit log itself is the record of them.

`etmf audit verify` replays them as no-ops, so a replay still rebuilds every table exactly;
administrators list them from the log (event type ``storage.integrity_alert``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from etmf.audit.store import PendingEvent, projection
from etmf.records.integrity import ALERT_EVENT


@projection(ALERT_EVENT)
def integrity_alert(session: Session, event: PendingEvent) -> None:
    """Nothing to project: the alert lives in the log (stream "blob"/sha256)."""
