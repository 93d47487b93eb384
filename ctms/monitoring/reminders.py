"""Reminders of overdue visit reports and overdue action items, once per threshold.

Thresholds are days overdue (1, 7, 14, 30). Each reminder is a ``monitoring.reminder_sent``
event on the record's reminder stream (``report:<visit id>`` or ``item:<action item id>``);
a threshold already recorded is never mailed again, and when several were passed since the
last run only the most overdue one is sent (the pattern of the SAE clock reminders). The
visit's CRA and the study's managers are told; a report filed or an item closed stops them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctms.monitoring.models import ActionItem, MonitoringVisit
from ctms.monitoring.services import KINDS, overdue_items, overdue_reports, report_due
from ctms.safety.reminders import managers_of
from etmf.accounts.models import User
from etmf.audit.models import Event
from etmf.audit.store import Actor, Context, unit_of_work
from etmf.mail import Mail
from etmf.studies.models import Site, Study

if TYPE_CHECKING:
    from etmf.bootstrap import Services

STREAM = "monitoring_reminder"
EVENT = "monitoring.reminder_sent"
THRESHOLDS = (1, 7, 14, 30)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Reminder:
    kind: str  # report | item
    record_id: int
    study_id: int
    threshold: int
    due_on: date

    @property
    def stream_id(self) -> str:
        return f"{self.kind}:{self.record_id}"


def _sent(session: Session, stream_id: str) -> set[int]:
    return {int(json.loads(p)["threshold_days"]) for p in session.scalars(select(Event.payload)
            .where(Event.stream_type == STREAM, Event.stream_id == stream_id,
                   Event.type == EVENT))}


def _owed(session: Session, kind: str, record_id: int, study_id: int, due: date,
          today: date) -> Reminder | None:
    late = (today - due).days
    reached = [t for t in THRESHOLDS if late >= t]
    if not reached:
        return None
    if any(s >= max(reached) for s in _sent(session, f"{kind}:{record_id}")):
        return None
    return Reminder(kind, record_id, study_id, max(reached), due)


def owed_reminders(session: Session, today: date) -> list[Reminder]:
    """Every reminder that a run today would send (reports first, then action items)."""
    owed: list[Reminder] = []
    studies = list(session.scalars(select(Study.id).where(Study.locked_at.is_(None))
                                   .order_by(Study.id)))
    for study_id in studies:
        for visit, due in overdue_reports(session, study_id, today):
            r = _owed(session, "report", visit.id, study_id, due, today)
            if r is not None:
                owed.append(r)
        for item in overdue_items(session, study_id, today):
            r = _owed(session, "item", item.id, study_id, item.due_on, today)
            if r is not None:
                owed.append(r)
    return owed


def _mail(session: Session, r: Reminder, today: date) -> tuple[tuple[str, ...], str, str]:
    late = (today - r.due_on).days
    days = f"{late} day{'s' if late != 1 else ''}"
    if r.kind == "report":
        visit = session.get(MonitoringVisit, r.record_id)
        assert visit is not None and visit.visited_on is not None
        item = None
    else:
        item = session.get(ActionItem, r.record_id)
        assert item is not None
        visit = session.get(MonitoringVisit, item.visit_id)
        assert visit is not None
    site = session.get(Site, visit.site_id)
    assert site is not None
    cra = session.get(User, visit.cra_user_id)
    to = tuple(dict.fromkeys(([cra.email] if cra is not None and cra.active else [])
                             + [u.email for u in managers_of(session, r.study_id)]))
    if item is None:
        assert visit.visited_on is not None
        subject = f"Monitoring visit report overdue by {days}: site {site.number}"
        body = (f"The report of the {KINDS[visit.kind].lower()} visit of site {site.number} on "
                f"{visit.visited_on.isoformat()} (CRA {visit.cra_name}) was due in the TMF on "
                f"{r.due_on.isoformat()} and is not filed: {days} overdue.\n")
    else:
        subject = f"Action item overdue by {days}: site {site.number}"
        body = (f"The action item “{item.description}” of site {site.number} (owner "
                f"{item.owner}) was due on {item.due_on.isoformat()} and is still open: "
                f"{days} overdue.\n")
    return to, subject, body


def send_monitoring_reminders(svc: Services, *, progress: Progress | None = None
                              ) -> list[Reminder]:
    """Mail each overdue report and action item at each threshold it reached, once."""
    today = svc.clock.now().date()
    with svc.db.read_session() as session:
        owed = owed_reminders(session, today)
    sent = []
    for done, r in enumerate(owed):
        if progress is not None:
            progress(done, len(owed), r.stream_id)
        with unit_of_work(svc.db, svc.clock, Actor.system("monitoring reminders"),
                          Context()) as uow:
            # Another worker may have sent it, or the report was filed, since the scan.
            if any(s >= r.threshold for s in _sent(uow.session, r.stream_id)):
                continue
            if r.kind == "report":
                visit = uow.session.get(MonitoringVisit, r.record_id)
                if visit is None or visit.status != "recorded" \
                        or report_due(uow.session, visit) != r.due_on:
                    continue
            else:
                item = uow.session.get(ActionItem, r.record_id)
                if item is None or item.status != "open":
                    continue
            to, subject, body = _mail(uow.session, r, today)
            uow.emit(STREAM, r.stream_id, EVENT,
                     {"kind": r.kind, "record_id": r.record_id, "threshold_days": r.threshold,
                      "due_on": r.due_on.isoformat(), "to": list(to)}, study_id=r.study_id)
            if to:
                mail = Mail(to=to, subject=subject, body=body)
                uow.after_commit.append(lambda mail=mail: svc.mailer.send(mail))
            uow.commit()
        sent.append(r)
    if progress is not None:
        progress(len(owed), len(owed), f"{len(sent)} monitoring reminder(s) sent")
    return sent
