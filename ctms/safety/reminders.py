"""Reminders of SAE reporting clocks, once per threshold, to the study's managers.

Thresholds are days left before the due date (7, 3, 1, 0; -1 is overdue). Each reminder is
an ``sae.reminder_sent`` event on the SAE's reminder stream; a threshold already recorded is
never mailed again, and when several were passed since the last run only the most urgent
one is sent (the pattern of etmf.workflows.reminders).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctms.safety.models import SeriousAdverseEvent
from ctms.safety.services import clock_state
from etmf.accounts.models import Membership, User
from etmf.audit.models import Event
from etmf.audit.store import Actor, Context, unit_of_work
from etmf.mail import Mail
from etmf.studies.models import Site

if TYPE_CHECKING:
    from etmf.bootstrap import Services

STREAM = "sae_reminder"
EVENT = "sae.reminder_sent"
THRESHOLDS = (7, 3, 1, 0, -1)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SaeReminder:
    sae_id: int
    study_id: int
    threshold: int
    state: str


def _sent(session: Session, sae_id: int) -> set[int]:
    return {int(json.loads(p)["threshold_days"]) for p in session.scalars(select(Event.payload)
            .where(Event.stream_type == STREAM, Event.stream_id == str(sae_id),
                   Event.type == EVENT))}


def managers_of(session: Session, study_id: int) -> list[User]:
    return list(session.scalars(select(User).join(Membership, Membership.user_id == User.id)
                                .where(Membership.study_id == study_id,
                                       Membership.role == "study_manager",
                                       Membership.revoked_at.is_(None), User.active.is_(True))
                                .order_by(User.id)).unique())


def send_sae_reminders(svc: Services, *, progress: Progress | None = None) -> list[SaeReminder]:
    today = svc.clock.now().date()
    with svc.db.read_session() as session:
        owed = []
        for sae in session.scalars(select(SeriousAdverseEvent).where(
                SeriousAdverseEvent.due_on.is_not(None),
                SeriousAdverseEvent.submitted_on.is_(None)).order_by(SeriousAdverseEvent.id)):
            assert sae.due_on is not None
            reached = [t for t in THRESHOLDS if (sae.due_on - today).days <= t]
            if reached and not any(s <= min(reached) for s in _sent(session, sae.id)):
                owed.append(SaeReminder(sae.id, sae.study_id, min(reached),
                                        clock_state(sae, today)))
    sent = []
    for done, r in enumerate(owed):
        if progress is not None:
            progress(done, len(owed), f"SAE {r.sae_id}")
        with unit_of_work(svc.db, svc.clock, Actor.system("SAE reminders"), Context()) as uow:
            if any(s <= r.threshold for s in _sent(uow.session, r.sae_id)):
                continue
            sae = uow.session.get(SeriousAdverseEvent, r.sae_id)
            assert sae is not None and sae.due_on is not None
            site = uow.session.get(Site, sae.site_id)
            assert site is not None
            to = tuple(u.email for u in managers_of(uow.session, r.study_id))
            uow.emit(STREAM, r.sae_id, EVENT, {"sae_id": r.sae_id, "threshold_days": r.threshold,
                                                "due_on": sae.due_on.isoformat(),
                                                "to": list(to)}, study_id=r.study_id)
            if to:
                mail = Mail(to=to, subject=f"SAE report {r.state}: {sae.term} (site "
                            f"{site.number})",
                            body=(f"The expedited report of the serious adverse event "
                                  f"“{sae.term}” at site {site.number} (aware "
                                  f"{sae.awareness_on.isoformat()}, {sae.clock_days}-day "
                                  f"clock) is due on {sae.due_on.isoformat()}: {r.state}.\n"))
                uow.after_commit.append(lambda mail=mail: svc.mailer.send(mail))
            uow.commit()
        sent.append(r)
    if progress is not None:
        progress(len(owed), len(owed), f"{len(sent)} SAE reminder(s) sent")
    return sent
