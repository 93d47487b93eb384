"""KRI events → the study's thresholds and the daily snapshots of the trend."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ctms.risk.models import KriSnapshot, KriThreshold
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


@projection("risk.snapshot_taken")
def snapshot_taken(session: Session, event: PendingEvent) -> None:
    d = event.data
    taken_on = date.fromisoformat(str(d["taken_on"]))
    for site in d["sites"]:  # type: ignore[union-attr]
        for code, (value, level) in site["values"].items():  # type: ignore[index,union-attr]
            session.add(KriSnapshot(study_id=d["study_id"], site_id=site["site_id"],  # type: ignore[index]
                                    indicator=code, taken_on=taken_on, value=value,
                                    level=level))
