"""Accruals: what a site has earned, computed from the records of completed activities.

Nothing here is typed in. A subject enrolled earns the per-subject rate on the enrollment
date; a screen failure the screen-failure fee; a completed visit its visit rate and the rate
of each procedure done at that visit; a milestone (site activation, first subject enrolled,
site close-out) its rate on the day it happened. Each accrual has a ``key`` naming the
activity, so a batch pays it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from ctms.payments.models import PaymentContract, PaymentRate
from ctms.sites.models import SiteStatusChange
from ctms.subjects.models import Subject, Visit

#: Milestones a contract may pay, with their labels.
MILESTONES = {"site_activation": "Site activation",
              "first_subject_enrolled": "First subject enrolled",
              "site_closeout": "Site close-out"}
KINDS = ("visit", "procedure", "milestone")


@dataclass(frozen=True)
class Accrual:
    site_id: int
    key: str
    kind: str  # enrolled | screen_failure | visit | procedure | milestone
    description: str
    activity_on: date
    amount: int
    currency: str


@dataclass(frozen=True)
class Unpriced:
    """A completed activity the contract has no rate for (a discrepancy to resolve)."""

    site_id: int
    key: str
    description: str
    activity_on: date


def _milestone_dates(session: Session, site_id: int, subjects: list[Subject]
                     ) -> dict[str, date]:
    found: dict[str, date] = {}
    for change in session.scalars(select(SiteStatusChange)
                                  .where(SiteStatusChange.site_id == site_id)
                                  .order_by(SiteStatusChange.effective_on,
                                            SiteStatusChange.id)):
        if change.to_status == "active" and "site_activation" not in found:
            found["site_activation"] = change.effective_on
        if change.to_status == "closed":
            found["site_closeout"] = change.effective_on
    enrolled = [s.enrolled_on for s in subjects if s.enrolled_on]
    if enrolled:
        found["first_subject_enrolled"] = min(enrolled)
    return found


def site_accruals(session: Session, contract: PaymentContract, until: date | None = None
                  ) -> tuple[list[Accrual], list[Unpriced]]:
    """Every accrual of the site up to ``until`` (inclusive), and the unpriced activities."""
    site_id, cur = contract.site_id, contract.currency
    rates = list(session.scalars(select(PaymentRate).where(PaymentRate.site_id == site_id)))
    visit_rates = {r.code: r for r in rates if r.kind == "visit"}
    procedures: dict[str, list[PaymentRate]] = {}
    for r in rates:
        if r.kind == "procedure":
            procedures.setdefault(r.visit_code, []).append(r)
    subjects = list(session.scalars(select(Subject).where(Subject.site_id == site_id)
                                    .order_by(Subject.number)))
    numbers = {s.id: s.number for s in subjects}
    out: list[Accrual] = []
    unpriced: list[Unpriced] = []
    for s in subjects:
        if s.enrolled_on and contract.enrolled_fee:
            out.append(Accrual(site_id, f"enrolled:{s.id}", "enrolled",
                               f"Subject {s.number} enrolled", s.enrolled_on,
                               contract.enrolled_fee, cur))
        if s.status == "screen_failed" and s.ended_on and contract.screen_failure_fee:
            out.append(Accrual(site_id, f"screen_failure:{s.id}", "screen_failure",
                               f"Subject {s.number} screen failure", s.ended_on,
                               contract.screen_failure_fee, cur))
    for v in session.scalars(select(Visit).where(Visit.site_id == site_id,
                                                 Visit.status == "completed")
                             .order_by(Visit.completed_on, Visit.id)):
        assert v.completed_on is not None
        who = f"Subject {numbers.get(v.subject_id, '?')} visit {v.code}"
        rate = visit_rates.get(v.code)
        if rate is None:
            unpriced.append(Unpriced(site_id, f"visit:{v.id}", f"{who} ({v.name}): no visit "
                                     "rate in the contract", v.completed_on))
        elif rate.amount:
            out.append(Accrual(site_id, f"visit:{v.id}", "visit", f"{who} ({v.name})",
                               v.completed_on, rate.amount, cur))
        for p in procedures.get(v.code, []):
            if p.amount:
                out.append(Accrual(site_id, f"procedure:{p.code}:{v.id}", "procedure",
                                   f"{who}: {p.label}", v.completed_on, p.amount, cur))
    happened = _milestone_dates(session, site_id, subjects)
    for r in rates:
        if r.kind == "milestone" and r.code in happened and r.amount:
            out.append(Accrual(site_id, f"milestone:{r.code}", "milestone",
                               f"Milestone: {r.label}", happened[r.code], r.amount, cur))
    if until is not None:
        out = [a for a in out if a.activity_on <= until]
        unpriced = [u for u in unpriced if u.activity_on <= until]
    out.sort(key=lambda a: (a.activity_on, a.key))
    return out, unpriced
