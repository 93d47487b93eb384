"""Reminders for signature requests that are due soon or overdue.

Thresholds are days before the due date (``2``: two days before; ``0``: on the due date;
``-1``: one day overdue), from the ``signature_reminder_days`` setting. A pending signer whose
turn it is gets one e-mail per threshold reached: each reminder is recorded by a
``signature.reminder_sent`` event on the signer's own reminder stream (so reminding never
changes the request's version under someone signing it), and a threshold already recorded
for that signer is never mailed again, however often the task runs. When several thresholds
were passed since the last run (the task did not run for a while), only the most urgent one
is sent: one reminder, not a burst.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.accounts.models import User
from etmf.audit.models import Event
from etmf.audit.store import Actor, Context, unit_of_work
from etmf.documents.models import Document
from etmf.errors import ValidationError
from etmf.mail import Mail
from etmf.workflows import rules
from etmf.workflows.models import RequestedSigner, SignatureRequest
from etmf.workflows.services import request_link

if TYPE_CHECKING:
    from etmf.bootstrap import Services

STREAM = "signature_reminder"
EVENT = "signature.reminder_sent"

Progress = Callable[[int, int, str], None]


def parse_thresholds(raw: Iterable[str | int]) -> tuple[int, ...]:
    """Distinct whole numbers of days, most distant first; a readable error otherwise."""
    found: set[int] = set()
    for item in raw:
        try:
            found.add(int(str(item).strip()))
        except ValueError:
            raise ValidationError(
                f"Reminder threshold {item!r} is not a whole number of days (days before the "
                "due date; 0 is the due date, negative numbers are days overdue).") from None
    if not found:
        raise ValidationError("Give at least one reminder threshold.")
    return tuple(sorted(found, reverse=True))


def threshold_words(days: int) -> str:
    if days > 1:
        return f"due in {days} days"
    if days == 1:
        return "due tomorrow"
    if days == 0:
        return "due today"
    return f"{-days} day{'s' if days < -1 else ''} overdue"


@dataclass(frozen=True)
class Reminder:
    request_id: int
    signer_id: int
    user_id: int
    email: str
    printed_name: str
    meaning: str
    document_id: int
    document_title: str
    study_id: int
    due_date: date
    threshold: int

    @property
    def words(self) -> str:
        return threshold_words(self.threshold)


def _sent_thresholds(session: Session, signer_id: int) -> set[int]:
    payloads = session.scalars(select(Event.payload).where(
        Event.stream_type == STREAM, Event.stream_id == str(signer_id), Event.type == EVENT))
    return {int(json.loads(p)["threshold_days"]) for p in payloads}


def due_reminders(session: Session, today: date, thresholds: Iterable[int]) -> list[Reminder]:
    """Reminders owed on ``today``: for each open request with a due date, each signer whose
    turn it is and who has not yet been reminded at the most urgent threshold reached."""
    levels = tuple(thresholds)
    owed = []
    requests = session.scalars(select(SignatureRequest).where(
        SignatureRequest.status == rules.OPEN, SignatureRequest.due_date.is_not(None))
        .order_by(SignatureRequest.id)).all()
    for request in requests:
        assert request.due_date is not None
        days_left = (request.due_date - today).days
        reached = [t for t in levels if days_left <= t]
        if not reached:
            continue
        threshold = min(reached)
        turn = rules.whose_turn(request.signers, request.ordering)
        doc = session.get(Document, request.document_id)
        assert doc is not None
        for signer in request.signers:
            if signer.position not in turn.positions:
                continue
            # A threshold as urgent or more already mailed: nothing new to say.
            if any(sent <= threshold for sent in _sent_thresholds(session, signer.id)):
                continue
            user = session.get(User, signer.user_id)
            if user is None or not user.active:
                continue
            owed.append(Reminder(
                request_id=request.id, signer_id=signer.id, user_id=user.id, email=user.email,
                printed_name=signer.printed_name, meaning=signer.meaning, document_id=doc.id,
                document_title=doc.title, study_id=request.study_id,
                due_date=request.due_date, threshold=threshold))
    return owed


def _mail(reminder: Reminder, link: str) -> Mail:
    return Mail(
        to=(reminder.email,),
        subject=f"Reminder: signature {reminder.words}: {reminder.document_title}",
        body=(f"Dear {reminder.printed_name},\n\nYour electronic signature on "
              f"“{reminder.document_title}” (meaning “{rules.MEANINGS[reminder.meaning]}”) "
              f"was requested by {reminder.due_date.isoformat()} and is "
              f"{reminder.words}.\n\nOpen the document and sign, or decline with a "
              f"reason:\n{link}\n"))


def send_reminders(svc: Services, *, dry_run: bool = False,
                   thresholds: Iterable[str | int] | None = None,
                   progress: Progress | None = None) -> list[Reminder]:
    """Mail every reminder owed now (see the module docstring); returns them. With
    ``dry_run`` nothing is mailed or recorded."""
    levels = parse_thresholds(svc.settings.signature_reminder_days if thresholds is None
                              else thresholds)
    today = svc.clock.now().date()
    with svc.db.read_session() as session:
        owed = due_reminders(session, today, levels)
    if dry_run:
        return owed
    sent = []
    for done, reminder in enumerate(owed):
        if progress is not None:
            progress(done, len(owed), f"Reminding {reminder.printed_name}")
        with unit_of_work(svc.db, svc.clock, Actor.system("signature reminders"),
                          Context()) as uow:
            # Checked again under the write lock: a concurrent run may have sent it.
            if any(t <= reminder.threshold
                   for t in _sent_thresholds(uow.session, reminder.signer_id)):
                continue
            signer = uow.session.get(RequestedSigner, reminder.signer_id)
            request = uow.session.get(SignatureRequest, reminder.request_id)
            if signer is None or request is None or signer.status != rules.PENDING \
                    or request.status != rules.OPEN:
                continue
            uow.emit(STREAM, reminder.signer_id, EVENT, {
                "request_id": reminder.request_id, "signer_id": reminder.signer_id,
                "user_id": reminder.user_id, "document_id": reminder.document_id,
                "due_date": reminder.due_date.isoformat(),
                "threshold_days": reminder.threshold,
            }, study_id=reminder.study_id)
            mail = _mail(reminder, request_link(svc.settings.server_name_for_mail,
                                                reminder.request_id))
            uow.after_commit.append(lambda mail=mail: svc.mailer.send(mail))
            uow.commit()
        sent.append(reminder)
    if progress is not None:
        progress(len(owed), len(owed), f"{len(sent)} reminder(s) sent")
    return sent
