"""EDC import events: the import log (subject and visit changes have their own events)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from ctms.edc.models import EdcImport
from etmf.audit.store import PendingEvent, projection


@projection("edc.imported")
def edc_imported(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(EdcImport(id=int(event.stream_id), study_id=d["study_id"],
                          filename=d["filename"], sha256=d["sha256"], changes=d["changes"],
                          problems=d["problems"], imported_at=event.occurred_at,
                          imported_by_name=event.actor.name))
