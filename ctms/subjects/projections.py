"""Subject events: status, consents, planned and completed visits."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ctms.randomization.models import RandomizationSlot
from ctms.subjects.models import Consent, Subject, SubjectStatusChange, Visit, VisitDefinition
from etmf.audit.store import PendingEvent, projection


def _d(value: object) -> date:
    return date.fromisoformat(str(value))


@projection("subject.screened")
def subject_screened(session: Session, event: PendingEvent) -> None:
    d = event.data
    on = _d(d["screened_on"])
    session.add(Subject(id=int(event.stream_id), study_id=d["study_id"], site_id=d["site_id"],
                        number=d["number"], status="screening", screened_on=on,
                        version=event.stream_version))
    session.add(SubjectStatusChange(id=d["change_id"], subject_id=int(event.stream_id),
                                    from_status=None, to_status="screening", effective_on=on,
                                    at=event.occurred_at, by_name=event.actor.name,
                                    reason=None, source="manual"))


@projection("subject.consented")
def subject_consented(session: Session, event: PendingEvent) -> None:
    d = event.data
    subject = session.get(Subject, int(event.stream_id))
    assert subject is not None
    session.add(Consent(id=d["consent_id"], subject_id=subject.id,
                        icf_version_id=d["icf_version_id"], consented_on=_d(d["consented_on"]),
                        recorded_at=event.occurred_at, recorded_by_name=event.actor.name))
    subject.version = event.stream_version


@projection("subject.status_changed", "subject.randomized")
def subject_status_changed(session: Session, event: PendingEvent) -> None:
    d = event.data
    subject = session.get(Subject, int(event.stream_id))
    assert subject is not None
    on = _d(d["effective_on"])
    subject.status = str(d["to"])
    if d["to"] == "enrolled":
        subject.enrolled_on = on
        for v in d.get("visits", []):  # type: ignore[union-attr]
            session.add(Visit(id=v["id"], subject_id=subject.id, study_id=subject.study_id,
                              site_id=subject.site_id, code=v["code"], name=v["name"],
                              due_on=_d(v["due_on"]), window_start=_d(v["window_start"]),
                              window_end=_d(v["window_end"]), status="planned",
                              out_of_window=False))
    elif d["to"] == "randomized":
        subject.randomized_on = on
        subject.arm = d["arm"]
        subject.stratum = d["stratum"]
        slot = session.get(RandomizationSlot, d["slot_id"])
        assert slot is not None
        slot.subject_id = subject.id
    elif d["to"] in ("completed", "discontinued", "screen_failed"):
        subject.ended_on = on
        subject.end_reason = event.reason
    subject.version = event.stream_version
    session.add(SubjectStatusChange(id=d["change_id"], subject_id=subject.id,
                                    from_status=d["from"], to_status=d["to"], effective_on=on,
                                    at=event.occurred_at, by_name=event.actor.name,
                                    reason=event.reason, source=d.get("source") or "manual"))


@projection("visit.completed")
def visit_completed(session: Session, event: PendingEvent) -> None:
    d = event.data
    visit = session.get(Visit, d["visit_id"])
    subject = session.get(Subject, int(event.stream_id))
    assert visit is not None and subject is not None
    visit.status = "completed"
    visit.completed_on = _d(d["completed_on"])
    visit.out_of_window = bool(d["out_of_window"])
    visit.source = d.get("source")
    subject.version = event.stream_version


@projection("ctms.visit_defined")
def visit_defined(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(VisitDefinition(id=int(event.stream_id), study_id=d["study_id"], code=d["code"],
                                name=d["name"], day=d["day"], window_before=d["window_before"],
                                window_after=d["window_after"]))
