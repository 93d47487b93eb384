"""How tracking events change the read tables (no other code writes them)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete
from sqlalchemy.orm import Session

from etmf.audit.store import PendingEvent, projection
from etmf.tracking import upkeep  # noqa: F401 - registers the dashboard caches' upkeep
from etmf.tracking.models import (
    EdlEntry,
    ExpiryRule,
    MilestoneDate,
    Person,
    PersonDocument,
    PersonSite,
    TrackingTargets,
)


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@projection("edl.entries_added")
def entries_added(session: Session, event: PendingEvent) -> None:
    study_id = int(event.stream_id)
    for e in event.data["entries"]:
        session.add(EdlEntry(
            id=e["id"], study_id=study_id, level=e["level"], country_id=e.get("country_id"),
            site_id=e.get("site_id"), artifact_id=e["artifact_id"], zone=e["zone"],
            required_count=e["required_count"], milestone=e.get("milestone")))


@projection("edl.entry_changed")
def entry_changed(session: Session, event: PendingEvent) -> None:
    entry = session.get(EdlEntry, event.data["entry_id"])
    assert entry is not None
    for field, (_old, new) in event.data["changes"].items():
        if field not in ("required_count", "milestone"):
            raise AssertionError(f"unknown EDL field {field}")
        setattr(entry, field, new)


@projection("edl.entry_removed")
def entry_removed(session: Session, event: PendingEvent) -> None:
    session.execute(delete(EdlEntry).where(EdlEntry.id == event.data["entry_id"]))


@projection("edl.placeholder_linked")
def placeholder_linked(session: Session, event: PendingEvent) -> None:
    entry = session.get(EdlEntry, event.data["entry_id"])
    assert entry is not None
    entry.placeholder_id = event.data["document_id"]


@projection("milestone.dates_set")
def milestone_dates_set(session: Session, event: PendingEvent) -> None:
    d = event.data
    row = session.get(MilestoneDate, d["id"])
    if row is None:
        row = MilestoneDate(id=d["id"], study_id=int(event.stream_id),
                            country_id=d.get("country_id"), site_id=d.get("site_id"),
                            code=d["code"])
        session.add(row)
    row.planned = _date(d["planned"][1])
    row.actual = _date(d["actual"][1])


@projection("tracking.targets_set")
def targets_set(session: Session, event: PendingEvent) -> None:
    study_id = int(event.stream_id)
    row = session.get(TrackingTargets, study_id)
    if row is None:
        from etmf.tracking.services import DEFAULT_REMINDER_ROLES

        # Events from before the roles were configurable: the rule of the time.
        row = TrackingTargets(study_id=study_id, expiry_roles=DEFAULT_REMINDER_ROLES,
                              milestone_roles=DEFAULT_REMINDER_ROLES)
        session.add(row)
    for field, value in event.data["targets"].items():
        setattr(row, field, value)


@projection("expiry.rule_set")
def expiry_rule_set(session: Session, event: PendingEvent) -> None:
    row = session.get(ExpiryRule, event.stream_id)
    if row is None:
        row = ExpiryRule(artifact_id=event.stream_id)
        session.add(row)
    row.validity_days = event.data["validity_days"][1]


@projection("person.created")
def person_created(session: Session, event: PendingEvent) -> None:
    session.add(Person(id=int(event.stream_id), name=event.data["name"],
                       email=event.data.get("email")))


@projection("person.site_linked")
def person_site_linked(session: Session, event: PendingEvent) -> None:
    session.add(PersonSite(person_id=int(event.stream_id), site_id=event.data["site_id"],
                           role=event.data["role"]))


@projection("person.site_unlinked")
def person_site_unlinked(session: Session, event: PendingEvent) -> None:
    session.execute(delete(PersonSite).where(
        PersonSite.person_id == int(event.stream_id),
        PersonSite.site_id == event.data["site_id"], PersonSite.role == event.data["role"]))


@projection("person.document_linked")
def person_document_linked(session: Session, event: PendingEvent) -> None:
    session.add(PersonDocument(person_id=int(event.stream_id),
                               document_id=event.data["document_id"]))


@projection("tracking.reminder_sent")
def reminder_sent(session: Session, event: PendingEvent) -> None:
    """No read table changes: the event is the record that the reminder went out, read back
    so that each threshold is mailed once (see etmf.tracking.reminders)."""
