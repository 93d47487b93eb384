"""A site turning red on an indicator notifies the study's managers, once.

Each notice is a ``risk.red_notified`` event on the cell's stream (``site:indicator``); when
the cell is no longer red a ``risk.red_cleared`` event re-arms it, so a site that turns red
again is reported again, but a site that stays red is reported only once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select

from ctms.risk.indicators import RED
from ctms.risk.services import heat_map
from ctms.safety.reminders import managers_of
from etmf.audit.models import Event
from etmf.audit.store import Actor, Context, unit_of_work
from etmf.mail import Mail
from etmf.studies.models import Study

if TYPE_CHECKING:
    from etmf.bootstrap import Services

STREAM = "kri_alert"
Progress = Callable[[int, int, str], None]


def _armed(session, stream_id: str) -> bool:  # type: ignore[no-untyped-def]
    last = session.scalar(select(Event.type).where(
        Event.stream_type == STREAM, Event.stream_id == stream_id)
        .order_by(Event.seq.desc()).limit(1))
    return last != "risk.red_notified"


def notify_red_sites(svc: Services, *, progress: Progress | None = None) -> int:
    """Mail the managers about every site×indicator newly red; returns how many."""
    today = svc.clock.now().date()
    sent = 0
    with svc.db.read_session() as session:
        studies = list(session.scalars(select(Study.id).where(Study.locked_at.is_(None))))
    for n, study_id in enumerate(studies):
        if progress is not None:
            progress(n, len(studies), f"study {study_id}")
        # The indicators read every document of the study: computed in a read transaction,
        # so the write lock is held only to record the notifications.
        with svc.db.read_session() as session:
            rows = heat_map(session, study_id, today)
        with unit_of_work(svc.db, svc.clock, Actor.system("risk indicators"), Context()) as uow:
            study = uow.session.get(Study, study_id)
            assert study is not None
            to = tuple(u.email for u in managers_of(uow.session, study_id))
            lines = []
            for row in rows:
                for code, cell in row.cells.items():
                    stream_id = f"{row.site.id}:{code}"
                    armed = _armed(uow.session, stream_id)
                    if cell.level == RED and armed:
                        uow.emit(STREAM, stream_id, "risk.red_notified",
                                 {"site_id": row.site.id, "indicator": code,
                                  "value": str(cell.value), "to": list(to)}, study_id=study_id)
                        lines.append(f"Site {row.site.number}: {cell.indicator.label} is red "
                                     f"({cell.value} {cell.indicator.unit}; {cell.detail}).")
                    elif cell.level != RED and not armed:
                        uow.emit(STREAM, stream_id, "risk.red_cleared",
                                 {"site_id": row.site.id, "indicator": code}, study_id=study_id)
            if lines and to:
                mail = Mail(to=to, subject=f"{study.protocol_number}: site risk indicators "
                            "turned red", body="\n".join(lines) + "\n")
                uow.after_commit.append(lambda mail=mail: svc.mailer.send(mail))
            sent += len(lines)
            uow.commit()
    if progress is not None:
        progress(len(studies), len(studies), f"{sent} red indicator(s) notified")
    return sent
