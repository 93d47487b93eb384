"""Reminders before documents expire and before milestone dates, once per threshold.

Thresholds are days before the date, per study (``tracking_targets``; defaults 90,60,30,0 for
expiry and 30,7,0 for milestones). Each reminder is recorded by a ``tracking.reminder_sent``
event on its own stream — one per document and expiry date, one per milestone row and
planned date — so a threshold already recorded is never mailed again however often the task
runs, and a renewal (a new expiry date) or a re-planned milestone starts afresh. When several
thresholds were passed since the last run, only the most urgent is sent.

Recipients are configured per study and kind (``tracking_targets.expiry_roles`` and
``milestone_roles``, set with the targets on the EDL page): the active members having one of
those roles for the whole study, and for a site's document or milestone also those limited
to that site. By default: study managers, TMF specialists and site staff.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from etmf.accounts.models import Membership, User
from etmf.audit.models import Event
from etmf.audit.store import Actor, Context, unit_of_work
from etmf.mail import Mail
from etmf.studies.models import Site, Study
from etmf.tracking.expiry import expiring_documents
from etmf.tracking.models import MilestoneDate
from etmf.tracking.services import targets_of

if TYPE_CHECKING:
    from etmf.bootstrap import Services

STREAM = "tracking_reminder"
EVENT = "tracking.reminder_sent"

Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Reminder:
    key: str  # the stream id: one per document and expiry date, or milestone and date
    kind: str  # "expiry" | "milestone"
    study_id: int
    site_id: int | None
    subject_id: int  # the document or milestone row
    what: str
    due: date
    threshold: int
    days_left: int
    recipients: tuple[str, ...]

    @property
    def words(self) -> str:
        verb = "expires" if self.kind == "expiry" else "is due"
        if self.days_left > 1:
            return f"{verb} in {self.days_left} days ({self.due.isoformat()})"
        if self.days_left == 1:
            return f"{verb} tomorrow ({self.due.isoformat()})"
        if self.days_left == 0:
            return f"{verb} today ({self.due.isoformat()})"
        return f"{'expired' if self.kind == 'expiry' else 'was due'} on {self.due.isoformat()}"


def _levels(text: str) -> tuple[int, ...]:
    return tuple(sorted((int(p) for p in text.split(",") if p.strip()), reverse=True))


def _sent(session: Session, key: str) -> set[int]:
    return {int(json.loads(p)["threshold_days"]) for p in session.scalars(
        select(Event.payload).where(Event.stream_type == STREAM, Event.stream_id == key))}


def _recipients(session: Session, study_id: int, site_id: int | None,
                roles: str) -> tuple[str, ...]:
    codes = [r for r in roles.split(",") if r]
    if not codes:
        return ()
    q = select(User.email).join(Membership, Membership.user_id == User.id).where(
        Membership.study_id == study_id, Membership.revoked_at.is_(None), User.active.is_(True),
        Membership.role.in_(codes),
        or_(Membership.site_id.is_(None), Membership.site_id == site_id)
        if site_id is not None else Membership.site_id.is_(None))
    return tuple(sorted(set(session.scalars(q))))


def _reached(levels: tuple[int, ...], days_left: int) -> int | None:
    reached = [t for t in levels if days_left <= t]
    return min(reached) if reached else None


def due_reminders(session: Session, today: date) -> list[Reminder]:
    """Every reminder owed on ``today`` that has not been sent at that threshold or a more
    urgent one."""
    owed: list[Reminder] = []
    for study in session.scalars(select(Study).where(Study.locked_at.is_(None))
                                 .order_by(Study.id)):
        targets = targets_of(session, study.id)
        exp_levels = _levels(targets.expiry_reminders)
        horizon = max(exp_levels)
        candidates = expiring_documents(session, study.id, today, within_days=horizon)
        candidates += expiring_documents(session, study.id, today, expired=True)
        for e in candidates:
            threshold = _reached(exp_levels, e.days_left)
            key = f"exp-{e.document_id}-{e.expires_on.isoformat()}"
            if threshold is None or any(s <= threshold for s in _sent(session, key)):
                continue
            owed.append(Reminder(key, "expiry", study.id, e.site_id, e.document_id,
                                 f"{e.artifact_number} {e.title}", e.expires_on, threshold,
                                 e.days_left, _recipients(session, study.id, e.site_id,
                                                          targets.expiry_roles)))
        ms_levels = _levels(targets.milestone_reminders)
        for row in session.scalars(select(MilestoneDate).where(
                MilestoneDate.study_id == study.id, MilestoneDate.actual.is_(None),
                MilestoneDate.planned.is_not(None)).order_by(MilestoneDate.id)):
            assert row.planned is not None
            days_left = (row.planned - today).days
            threshold = _reached(ms_levels, days_left)
            key = f"ms-{row.id}-{row.planned.isoformat()}"
            if threshold is None or days_left < 0 or any(
                    s <= threshold for s in _sent(session, key)):
                continue
            owed.append(Reminder(key, "milestone", study.id, row.site_id, row.id,
                                 _milestone_label(session, row), row.planned, threshold,
                                 days_left, _recipients(session, study.id, row.site_id,
                                                        targets.milestone_roles)))
    return owed


def _milestone_label(session: Session, row: MilestoneDate) -> str:
    from etmf.reference_model.model import load_reference_model

    name = load_reference_model().milestone(row.code).name
    if row.site_id:
        site = session.get(Site, row.site_id)
        return f"Milestone {row.code} {name} at site {site.number if site else row.site_id}"
    return f"Milestone {row.code} {name}"


def _mail(r: Reminder, base_url: str) -> Mail:
    link = (f"{base_url}/documents/{r.subject_id}" if r.kind == "expiry"
            else f"{base_url}/tracking/studies/{r.study_id}")
    return Mail(to=r.recipients, subject=f"Reminder: {r.what} {r.words}",
                body=f"{r.what} {r.words}.\n\nOpen it:\n{link}\n")


def send_reminders(svc: Services, *, dry_run: bool = False,
                   progress: Progress | None = None) -> list[Reminder]:
    """Mail every reminder owed today (see the module docstring); returns them. With
    ``dry_run`` nothing is mailed or recorded."""
    today = svc.clock.now().date()
    with svc.db.read_session() as session:
        owed = due_reminders(session, today)
    if dry_run:
        return owed
    sent = []
    for done, r in enumerate(owed):
        if progress is not None:
            progress(done, len(owed), r.what)
        with unit_of_work(svc.db, svc.clock, Actor.system("tracking reminders"),
                          Context()) as uow:
            # Again under the write lock: a concurrent run may have sent it meanwhile.
            if any(s <= r.threshold for s in _sent(uow.session, r.key)):
                continue
            uow.emit(STREAM, r.key, EVENT, {
                "kind": r.kind, "subject_id": r.subject_id, "due": r.due.isoformat(),
                "threshold_days": r.threshold, "recipients": list(r.recipients)},
                study_id=r.study_id)
            if r.recipients:
                mail = _mail(r, svc.settings.server_name_for_mail)
                uow.after_commit.append(lambda mail=mail: svc.mailer.send(mail))
            uow.commit()
        sent.append(r)
    if progress is not None:
        progress(len(owed), len(owed), f"{len(sent)} reminder(s) sent")
    return sent
