"""Key risk indicators per site, computed from what the system holds, and the heat map.

Each cell has its value, its colour against the study's thresholds (or the defaults) and
what lies behind it, so that the page can link every cell to its records. The deviation rate
is the site's deviations per subject screened divided by the same rate over the study:
2.00 means twice the study's rate. The data-entry lag is the mean number of days from a
subject visit to the EDC import that brought it in (visits completed from the EDC whose
import fell in the last :data:`LAG_WINDOW_DAYS` days).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from ctms.deviations.models import Deviation
from ctms.monitoring.services import overdue_items, visits_due
from ctms.risk.indicators import BY_CODE, INDICATORS, Indicator, level, ratio
from ctms.risk.models import KriThreshold
from ctms.safety.models import SeriousAdverseEvent
from ctms.safety.services import is_late
from ctms.sites.models import SitePlan
from ctms.sites.services import default_study_gap_finder
from ctms.subjects.models import Subject, Visit
from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.models import VISIT_COMPLETED_PREDICATE, Event
from etmf.audit.store import UnitOfWork
from etmf.errors import ValidationError
from etmf.studies.models import Site

GapFinder = Callable[[Session, int, date], Sequence[Any]]
#: The data-entry lag counts the EDC imports of this many days before today.
LAG_WINDOW_DAYS = 90
#: Essential-document gaps a site's cell names (the rest are counted; its link lists all).
DETAIL_GAPS = 5


@dataclass(frozen=True)
class Cell:
    indicator: Indicator
    value: Decimal | None
    level: str
    #: What the value counts, in words (e.g. "4 deviations, 4 subjects").
    detail: str


@dataclass(frozen=True)
class SiteRow:
    site: Site
    cells: dict[str, Cell]

    @property
    def worst(self) -> str:
        levels = {c.level for c in self.cells.values()}
        return next((lv for lv in ("red", "amber", "green") if lv in levels), "none")


def thresholds(session: Session, study_id: int) -> dict[str, tuple[Decimal, Decimal]]:
    found = {i.code: (i.amber, i.red) for i in INDICATORS}
    for row in session.scalars(select(KriThreshold).where(KriThreshold.study_id == study_id)):
        if row.indicator in found:
            found[row.indicator] = (Decimal(row.amber), Decimal(row.red))
    return found


def set_threshold(uow: UnitOfWork, access: Access, study_id: int, indicator: str, *,
                  amber: str, red: str) -> None:
    access.require(Permission.MANAGE_STUDY, study_id)
    ind = BY_CODE.get(indicator)
    if ind is None:
        raise ValidationError(f"{indicator!r} is not a key risk indicator.")
    try:
        a, r = Decimal(str(amber).strip()), Decimal(str(red).strip())
    except InvalidOperation:
        raise ValidationError("Thresholds are numbers, e.g. 1.25.") from None
    if not (a.is_finite() and r.is_finite()) or a < 0 or r < 0:
        raise ValidationError("Thresholds are numbers of 0 or more.")
    if (ind.higher_is_worse and r < a) or (not ind.higher_is_worse and r > a):
        raise ValidationError(f"For {ind.label} the red threshold must be "
                              f"{'at or above' if ind.higher_is_worse else 'at or below'} "
                              "the amber one.")
    uow.emit("kri_threshold", f"{study_id}:{indicator}", "risk.threshold_set",
             {"study_id": study_id, "indicator": indicator, "amber": str(a), "red": str(r)},
             study_id=study_id)


@dataclass(frozen=True)
class EntryLag:
    """One subject visit entered from the EDC: when it happened and when it was imported."""

    site_id: int
    subject_id: int
    code: str
    visit_on: date
    entered_on: date

    @property
    def days(self) -> int:
        return max(0, (self.entered_on - self.visit_on).days)


def entry_lags(session: Session, study_id: int, today: date) -> list[EntryLag]:
    """Subject visits completed by an EDC import in the window ending today, per visit.

    The import date is the time of the ``visit.completed`` event that the import made
    (``source`` "edc"): the event log is where that fact lives."""
    since = today - timedelta(days=LAG_WINDOW_DAYS)
    rows = session.execute(select(Event.payload, Event.occurred_at).where(
        Event.study_id == study_id, text(f"audit_events.{VISIT_COMPLETED_PREDICATE}"),
        Event.payload.contains('"source":"edc"')).order_by(Event.seq)).all()
    found: dict[int, date] = {}
    for payload, at in rows:
        data = json.loads(payload)
        entered = at.date()
        if data.get("source") == "edc" and since < entered <= today:
            found[int(data["visit_id"])] = entered
    if not found:
        return []
    visits = session.scalars(select(Visit).where(Visit.id.in_(list(found))))
    return sorted((EntryLag(v.site_id, v.subject_id, v.code, v.completed_on, found[v.id])
                   for v in visits if v.completed_on is not None),
                  key=lambda e: (e.site_id, e.visit_on, e.subject_id))


def heat_map(session: Session, study_id: int, today: date,
             site_ids: frozenset[int] | None = None,
             gap_finder: GapFinder | None = None) -> list[SiteRow]:
    """Every (visible) site of the study × every indicator.

    The essential-document gaps of all the sites are found in one pass over the EDL, unless
    a ``gap_finder`` of one site is given."""
    limits = thresholds(session, study_id)
    sites = [s for s in session.scalars(select(Site).where(Site.study_id == study_id)
                                        .order_by(Site.number))
             if site_ids is None or s.id in site_ids]
    subjects: dict[int, list[Subject]] = {}
    for subj in session.scalars(select(Subject).where(Subject.study_id == study_id)):
        subjects.setdefault(subj.site_id, []).append(subj)
    devs = dict(session.execute(select(Deviation.site_id, func.count()).where(
        Deviation.study_id == study_id).group_by(Deviation.site_id)).all())
    total_devs = sum(devs.values())
    total_subjects = sum(len(v) for v in subjects.values())
    targets = {p.site_id: p.enrollment_target for p in session.scalars(
        select(SitePlan).where(SitePlan.study_id == study_id))}
    saes: dict[int, list[SeriousAdverseEvent]] = {}
    for sae in session.scalars(select(SeriousAdverseEvent).where(
            SeriousAdverseEvent.study_id == study_id)):
        saes.setdefault(sae.site_id, []).append(sae)

    if gap_finder is not None:
        gaps_of = {site.id: list(gap_finder(session, site.id, today)) for site in sites}
    else:
        bulk = default_study_gap_finder()
        gaps_of = {k: list(v) for k, v in bulk(
            session, study_id, today, [s.id for s in sites]).items()} if bulk else {}

    overdue_of: dict[int, list[Any]] = {}
    for item in overdue_items(session, study_id, today, frozenset(s.id for s in sites)):
        overdue_of.setdefault(item.site_id, []).append(item)
    due_of = visits_due(session, sites)

    lags: dict[int, list[EntryLag]] = {}
    for lag in entry_lags(session, study_id, today):
        lags.setdefault(lag.site_id, []).append(lag)

    rows = []
    for site in sites:
        values: dict[str, tuple[Decimal | None, str]] = {}
        mine = subjects.get(site.id, [])
        enrolled = sum(1 for s in mine if s.enrolled_on is not None)
        target = targets.get(site.id)
        values["enrollment"] = (ratio(enrolled, target) if target else None,
                                f"{enrolled} enrolled of a target of {target}" if target
                                else f"{enrolled} enrolled, no target set")
        failed = sum(1 for s in mine if s.status == "screen_failed")
        values["screen_failure"] = (ratio(failed, len(mine)),
                                    f"{failed} screen failures of {len(mine)} screened")
        n_dev = int(devs.get(site.id, 0))
        rate = None
        if mine and total_subjects:
            rate = (Decimal(0) if total_devs == 0 else
                    (Decimal(n_dev * total_subjects) / Decimal(len(mine) * total_devs))
                    .quantize(Decimal("0.01")))
        values["deviation_rate"] = (rate, f"{n_dev} deviations, {len(mine)} subjects (study: "
                                          f"{total_devs} deviations, {total_subjects} subjects)")
        late = [s for s in saes.get(site.id, []) if is_late(s, today)]
        values["sae_timeliness"] = (Decimal(len(late)), f"{len(late)} of "
                                    f"{len(saes.get(site.id, []))} SAE reports late or overdue")
        overdue = overdue_of.get(site.id, [])
        values["action_items"] = (Decimal(len(overdue)), f"{len(overdue)} open past due date")
        gaps = gaps_of.get(site.id, [])
        named = "; ".join(f"{g.artifact_name}: {g.problem}" for g in gaps[:DETAIL_GAPS])
        more = f"; and {len(gaps) - DETAIL_GAPS} more" if len(gaps) > DETAIL_GAPS else ""
        values["documents"] = (Decimal(len(gaps)), named + more or "none missing or expired")
        entered = lags.get(site.id, [])
        if entered:
            mean = (Decimal(sum(e.days for e in entered)) / len(entered)).quantize(
                Decimal("0.1"))
            values["data_entry_lag"] = (mean, f"{len(entered)} visit(s) entered from the EDC "
                                              f"in {LAG_WINDOW_DAYS} days, longest "
                                              f"{max(e.days for e in entered)} days")
        else:
            values["data_entry_lag"] = (None, f"no visits entered from the EDC in "
                                              f"{LAG_WINDOW_DAYS} days")
        due = due_of[site.id].on
        late_days = max(0, (today - due).days) if due else None
        values["monitoring"] = (Decimal(late_days) if late_days is not None else None,
                                f"next visit due {due.isoformat()}" if due
                                else "no visit rule or start date")
        cells = {}
        for ind in INDICATORS:
            value, detail = values[ind.code]
            amber, red = limits[ind.code]
            cells[ind.code] = Cell(ind, value, level(ind, value, amber, red), detail)
        rows.append(SiteRow(site, cells))
    return rows
