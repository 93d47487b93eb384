"""The key-risk-indicator trend: one snapshot per study and day of every site's values.

A snapshot is one ``risk.snapshot_taken`` event (stream ``kri_snapshot``, id
``<study>:<date>``) whose payload holds each site's value and level of each indicator; its
projection writes one :class:`~ctms.risk.models.KriSnapshot` row per site × indicator, so the
trend replays from the log like everything else. Taking the same day's snapshot twice
changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ctms.risk.indicators import BY_CODE, INDICATORS, RED
from ctms.risk.models import KriSnapshot
from ctms.risk.services import GapFinder, heat_map
from etmf.audit.store import Actor, Context, UnitOfWork, unit_of_work
from etmf.errors import Conflict, ValidationError
from etmf.studies.models import Site, Study

if TYPE_CHECKING:
    from etmf.bootstrap import Services

STREAM = "kri_snapshot"
#: The pseudo-indicator of the trend chart: how many indicators of a site are red.
RED_COUNT = "red_count"
Progress = Callable[[int, int, str], None]


def has_snapshot(session: Session, study_id: int, on: date) -> bool:
    return session.scalar(select(func.count()).select_from(KriSnapshot).where(
        KriSnapshot.study_id == study_id, KriSnapshot.taken_on == on)) != 0


def snapshot_payload(session: Session, study_id: int, today: date, *,
                     gap_finder: GapFinder | None = None) -> dict[str, object]:
    """Today's value of every site x indicator of the study, as the event records it."""
    rows = heat_map(session, study_id, today, gap_finder=gap_finder)
    return {
        "study_id": study_id, "taken_on": today.isoformat(),
        "sites": [{"site_id": r.site.id, "values": {
            code: [None if c.value is None else str(c.value), c.level]
            for code, c in r.cells.items()}} for r in rows],
    }


def take_snapshot(uow: UnitOfWork, study_id: int, payload: dict[str, object]) -> bool:
    """Record a snapshot computed by :func:`snapshot_payload`; False if today's exists."""
    today = uow.now.date()
    if payload["taken_on"] != today.isoformat() or has_snapshot(uow.session, study_id, today):
        return False
    uow.emit(STREAM, f"{study_id}:{today.isoformat()}", "risk.snapshot_taken", payload,
             expected_version=0, study_id=study_id)
    return True


def take_snapshots(svc: Services, *, progress: Progress | None = None,
                   gap_finder: GapFinder | None = None) -> int:
    """Today's snapshot of every open study; returns how many were taken. The indicators
    are computed in a read transaction (at Phase III size that reads every document); only
    the event is written under the write lock, so filing never waits for the computation."""
    with svc.db.read_session() as session:
        studies = list(session.scalars(select(Study.id).where(Study.locked_at.is_(None))
                                       .order_by(Study.id)))
    taken = 0
    for n, study_id in enumerate(studies):
        if progress is not None:
            progress(n, len(studies), f"study {study_id}")
        today = svc.clock.now().date()
        with svc.db.read_session() as session:
            if has_snapshot(session, study_id, today):
                continue
            payload = snapshot_payload(session, study_id, today, gap_finder=gap_finder)
        try:
            with unit_of_work(svc.db, svc.clock, Actor.system("risk indicators"),
                              Context()) as uow:
                if take_snapshot(uow, study_id, payload):
                    uow.commit()
                    taken += 1
        except Conflict:
            continue  # another worker took it at the same moment
    if progress is not None:
        progress(len(studies), len(studies), f"{taken} snapshot(s) taken")
    return taken


@dataclass(frozen=True)
class Series:
    site: Site
    #: One value per day of the trend, None where there is no snapshot or no data.
    values: list[Decimal | None]


@dataclass(frozen=True)
class Trend:
    indicator: str
    label: str
    unit: str
    days: list[date]
    series: list[Series]

    def rows(self) -> list[tuple[date, list[Decimal | None]]]:
        """The days that have a snapshot, each with every site's value."""
        out = []
        for n, day in enumerate(self.days):
            values = [s.values[n] for s in self.series]
            if any(v is not None for v in values):
                out.append((day, values))
        return out


def trend(session: Session, study_id: int, today: date, *, indicator: str = RED_COUNT,
          days: int = 30, site_ids: frozenset[int] | None = None) -> Trend:
    """Each (visible) site's daily value of ``indicator`` (or its count of red indicators)
    over the ``days`` days ending today."""
    if indicator != RED_COUNT and indicator not in BY_CODE:
        raise ValidationError(f"{indicator!r} is not a key risk indicator.")
    span = [today - timedelta(days=days - 1 - n) for n in range(days)]
    index = {d: n for n, d in enumerate(span)}
    sites = [s for s in session.scalars(select(Site).where(Site.study_id == study_id)
                                        .order_by(Site.number))
             if site_ids is None or s.id in site_ids]
    q = select(KriSnapshot).where(KriSnapshot.study_id == study_id,
                                  KriSnapshot.taken_on >= span[0],
                                  KriSnapshot.taken_on <= today)
    if indicator != RED_COUNT:
        q = q.where(KriSnapshot.indicator == indicator)
    values: dict[int, list[Decimal | None]] = {s.id: [None] * days for s in sites}
    for snap in session.scalars(q):
        row = values.get(snap.site_id)
        if row is None:
            continue
        n = index[snap.taken_on]
        if indicator == RED_COUNT:
            row[n] = (row[n] or Decimal(0)) + (1 if snap.level == RED else 0)
        elif snap.value is not None:
            row[n] = Decimal(snap.value)
    if indicator == RED_COUNT:
        label, unit = "Red indicators", "indicators"
    else:
        label, unit = BY_CODE[indicator].label, BY_CODE[indicator].unit
    return Trend(indicator, label, unit, span, [Series(s, values[s.id]) for s in sites])


def trend_choices() -> list[tuple[str, str]]:
    return [(RED_COUNT, "Red indicators per site")] + [(i.code, i.label) for i in INDICATORS]
