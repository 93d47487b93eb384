"""How study-plan and version events change the read tables."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ctms.studyplan.models import SiteVersionApproval, StudyDocumentVersion, StudyPlan
from etmf.audit.store import PendingEvent, projection


def _date(value: object) -> date | None:
    return date.fromisoformat(str(value)) if value else None


@projection("ctms.study_plan_set")
def study_plan_set(session: Session, event: PendingEvent) -> None:
    d = event.data
    plan = session.get(StudyPlan, int(event.stream_id))
    if plan is None:
        plan = StudyPlan(study_id=int(event.stream_id))
        session.add(plan)
    plan.indication = d.get("indication")
    plan.planned_enrollment = d.get("planned_enrollment")
    plan.planned_start = _date(d.get("planned_start"))
    plan.planned_end = _date(d.get("planned_end"))
    plan.version = event.stream_version


@projection("ctms.version_registered")
def version_registered(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(StudyDocumentVersion(id=int(event.stream_id), study_id=d["study_id"],
                                     kind=d["kind"], label=d["label"],
                                     document_id=d["document_id"], summary=d.get("summary")))


@projection("ctms.version_approved_at_site")
def version_approved(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(SiteVersionApproval(
        id=int(event.stream_id), study_id=d["study_id"], site_id=d["site_id"],
        version_id=d["version_id"], kind=d["kind"],
        approval_document_id=d["approval_document_id"],
        approved_on=_date(d["approved_on"]), activated_on=_date(d.get("activated_on"))))


@projection("ctms.version_activated_at_site")
def version_activated(session: Session, event: PendingEvent) -> None:
    approval = session.get(SiteVersionApproval, int(event.stream_id))
    assert approval is not None
    approval.activated_on = _date(event.data["activated_on"])
