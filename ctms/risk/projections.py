"""KRI threshold events → the study's thresholds."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ctms.risk.models import KriThreshold
from etmf.audit.store import PendingEvent, projection


@projection("risk.threshold_set")
def threshold_set(session: Session, event: PendingEvent) -> None:
    d = event.data
    row = session.get(KriThreshold, (d["study_id"], d["indicator"]))
    if row is None:
        session.add(KriThreshold(study_id=d["study_id"], indicator=d["indicator"],
                                 amber=d["amber"], red=d["red"]))
    else:
        row.amber, row.red = str(d["amber"]), str(d["red"])


@projection("risk.red_notified", "risk.red_cleared")
def red_notice(session: Session, event: PendingEvent) -> None:
    """Nothing to project: the events themselves record who was told, and when."""
