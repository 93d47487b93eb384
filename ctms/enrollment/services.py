"""Enrollment per site and study: actual vs target, and the forecast."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctms.enrollment.forecast import Forecast, SiteRate, forecast
from ctms.sites.models import SitePlan
from ctms.studyplan.models import StudyPlan
from ctms.subjects.models import Subject
from etmf.studies.models import Site


@dataclass(frozen=True)
class SiteEnrollment:
    site: Site
    target: int | None
    enrolled_dates: list[date]
    rate: SiteRate


@dataclass(frozen=True)
class StudyEnrollment:
    target: int | None
    start: date
    end: date | None
    sites: list[SiteEnrollment]
    forecast: Forecast | None

    @property
    def enrolled_dates(self) -> list[date]:
        return sorted(d for s in self.sites for d in s.enrolled_dates)


def study_enrollment(session: Session, study_id: int, today: date,
                     site_ids: frozenset[int] | None = None) -> StudyEnrollment:
    plan = session.get(StudyPlan, study_id)
    sites = list(session.scalars(select(Site).where(Site.study_id == study_id)
                                 .order_by(Site.number)))
    if site_ids is not None:
        sites = [s for s in sites if s.id in site_ids]
    targets = {p.site_id: p.enrollment_target
               for p in session.scalars(select(SitePlan).where(SitePlan.study_id == study_id))}
    dates: dict[int, list[date]] = {}
    for site_id, enrolled_on in session.execute(
            select(Subject.site_id, Subject.enrolled_on)
            .where(Subject.study_id == study_id, Subject.enrolled_on.is_not(None))):
        dates.setdefault(site_id, []).append(enrolled_on)
    rows = []
    for site in sites:
        d = sorted(dates.get(site.id, []))
        opened = site.activated_on or (d[0] if d else None)
        days = (today - opened).days + 1 if opened else 0
        rows.append(SiteEnrollment(site, targets.get(site.id), d,
                                   SiteRate(site.id, len(d), days)))
    target = plan.planned_enrollment if plan else None
    starts = [s.site.activated_on for s in rows if s.site.activated_on] + \
        [d for s in rows for d in s.enrolled_dates]
    start = (plan.planned_start if plan and plan.planned_start else None) or \
        (min(starts) if starts else today)
    fc = forecast(today, target, [s.rate for s in rows]) if target else None
    return StudyEnrollment(target, start, plan.planned_end if plan else None, rows, fc)
