"""Monitoring events → visits, findings, action items, the visit rule."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ctms.monitoring.models import ActionItem, Finding, MonitoringRule, MonitoringVisit
from etmf.audit.store import PendingEvent, projection


def _d(value: object) -> date:
    return date.fromisoformat(str(value))


@projection("monitoring.rule_set")
def rule_set(session: Session, event: PendingEvent) -> None:
    d = event.data
    rule = session.get(MonitoringRule, d["study_id"])
    if rule is None:
        rule = MonitoringRule(study_id=d["study_id"])
        session.add(rule)
    rule.interval_weeks = d["interval_weeks"]  # type: ignore[assignment]
    # Rules set before the subject count and report target existed have neither key.
    rule.every_subjects = d.get("every_subjects")  # type: ignore[assignment]
    rule.report_days = d.get("report_days")  # type: ignore[assignment]


def _visit(session: Session, event: PendingEvent) -> MonitoringVisit:
    visit = session.get(MonitoringVisit, int(event.stream_id))
    assert visit is not None
    visit.version = event.stream_version
    return visit


@projection("monitoring.visit_planned")
def visit_planned(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(MonitoringVisit(
        id=int(event.stream_id), study_id=d["study_id"], site_id=d["site_id"], kind=d["kind"],
        mode=d["mode"], planned_on=_d(d["planned_on"]), cra_user_id=d["cra_user_id"],
        cra_name=d["cra_name"], status="planned", version=event.stream_version))


@projection("monitoring.visit_recorded")
def visit_recorded(session: Session, event: PendingEvent) -> None:
    d = event.data
    visit = _visit(session, event)
    visit.status = "recorded"
    visit.visited_on = _d(d["visited_on"])
    for name in ("attendees", "subjects_reviewed", "documents_reviewed", "summary"):
        setattr(visit, name, d[name])
    for f in d["findings"]:  # type: ignore[union-attr]
        session.add(Finding(id=f["id"], visit_id=visit.id, category=f["category"],
                            severity=f["severity"], description=f["description"]))
    for a in d["action_items"]:  # type: ignore[union-attr]
        session.add(ActionItem(id=a["id"], visit_id=visit.id, study_id=visit.study_id,
                               site_id=visit.site_id, description=a["description"],
                               owner=a["owner"], due_on=_d(a["due_on"]), status="open"))


@projection("monitoring.action_item_closed")
def action_item_closed(session: Session, event: PendingEvent) -> None:
    _visit(session, event)
    item = session.get(ActionItem, event.data["item_id"])
    assert item is not None
    item.status = "closed"
    item.closed_on = _d(event.data["closed_on"])


@projection("monitoring.report_filed")
def report_filed(session: Session, event: PendingEvent) -> None:
    visit = _visit(session, event)
    visit.status = "reported"
    visit.report_document_id = event.data["document_id"]  # type: ignore[assignment]
    visit.signature_request_id = event.data["signature_request_id"]  # type: ignore[assignment]


@projection("monitoring.letter_filed")
def letter_filed(session: Session, event: PendingEvent) -> None:
    visit = _visit(session, event)
    visit.letter_document_id = event.data["document_id"]  # type: ignore[assignment]
    visit.letter_request_id = event.data["signature_request_id"]  # type: ignore[assignment]


@projection("monitoring.reminder_sent")
def reminder_sent(session: Session, event: PendingEvent) -> None:
    """Nothing to project: the event itself is the record that the reminder went out."""
