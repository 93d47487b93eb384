"""How study events change the read tables.

No explicit flushes: a later lookup autoflushes, and leaving inserts pending lets the ORM
batch them (replaying a million events is mostly these inserts).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from etmf.audit.store import PendingEvent, projection
from etmf.studies.models import Country, Site, Study


@projection("study.created")
def study_created(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(
        Study(
            id=int(event.stream_id),
            protocol_number=d["protocol_number"],
            title=d["title"],
            phase=d["phase"],
            sponsor=d["sponsor"],
            therapeutic_area=d.get("therapeutic_area"),
            status=d["status"],
            tmf_model_version=d["tmf_model_version"],
            created_at=event.occurred_at,
            version=event.stream_version,
        )
    )


@projection("country.added")
def country_added(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(Country(id=int(event.stream_id), study_id=d["study_id"], code=d["code"],
                        name=d["name"]))


@projection("site.added")
def site_added(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(
        Site(
            id=int(event.stream_id),
            study_id=d["study_id"],
            country_id=d["country_id"],
            number=d["number"],
            institution=d["institution"],
            principal_investigator=d.get("principal_investigator"),
            status=d["status"],
            version=event.stream_version,
        )
    )


@projection("study.locked", "study.unlocked")
def study_lock_changed(session: Session, event: PendingEvent) -> None:
    study = session.get(Study, int(event.stream_id))
    assert study is not None
    study.locked_at = event.occurred_at if event.type == "study.locked" else None
    study.version = event.stream_version
