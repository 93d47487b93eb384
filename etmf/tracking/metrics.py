"""Figures of the dashboard, computed from the data: completeness, overdue, expired,
timeliness and quality, per study, country, site, zone and milestone.

Definitions (the tests compute them by hand):

- completeness = Σ min(approved, required) / Σ required over the EDL entries of a group;
  missing = Σ required − min(filed, required): expected documents with no file at all;
- overdue = entries not complete whose milestone date (actual, else planned) has passed;
- timeliness: filing lag = filed (date) − document date, approval lag = approved − filed,
  in whole days; the share within the study's targets and the mean;
- quality: QC rejection rate = rejections / (rejections + approvals), a rejection being one
  QC decision raising issues; open QC issues = issues not yet answered.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Date, Integer, case, cast, func, select
from sqlalchemy.orm import Session

from etmf.audit.models import Event
from etmf.documents.models import Document, QcIssue
from etmf.tracking.expected import EntryState


@dataclass
class Completeness:
    key: object
    label: str
    expected: int = 0
    approved: int = 0
    missing: int = 0  # expected documents with no file at all
    not_approved: int = 0  # filed, not (yet) approved
    overdue: int = 0
    expired: int = 0
    entries: int = 0

    @property
    def percent(self) -> int:
        """Whole percent, rounded down (100 only when complete)."""
        return 100 * self.approved // self.expected if self.expected else 100


def completeness(states: Iterable[EntryState], key: Callable[[EntryState], object],
                 label: Callable[[object], str]) -> list[Completeness]:
    return group_by(states, {"only": key}, {"only": label})["only"]


def group_by(states: Iterable[EntryState], keys: dict[str, Callable[[EntryState], object]],
             labels: dict[str, Callable[[object], str]]) -> dict[str, list[Completeness]]:
    """Several groupings in one pass over the entries (the dashboard's tens of thousands)."""
    found: dict[str, dict[object, Completeness]] = {name: {} for name in keys}
    plan = [(found[name], fn, labels[name]) for name, fn in keys.items()]
    for s in states:
        required = s.entry.required_count
        counted, missing, not_approved = s.counted, s.missing, s.not_approved
        overdue, expired = s.overdue, s.expired
        for groups, fn, label in plan:
            k = fn(s)
            g = groups.get(k)
            if g is None:
                g = groups[k] = Completeness(k, label(k))
            g.entries += 1
            g.expected += required
            g.approved += counted
            g.missing += missing
            g.not_approved += not_approved
            g.overdue += overdue
            g.expired += expired
    return {name: list(groups.values()) for name, groups in found.items()}


def total(states: Iterable[EntryState]) -> Completeness:
    found = completeness(states, lambda _s: "study", lambda _k: "Study")
    return found[0] if found else Completeness("study", "Study")


@dataclass(frozen=True)
class Timeliness:
    filed: int
    filed_on_time: int
    mean_filing_days: int | None
    approved: int
    approved_on_time: int
    mean_approval_days: int | None
    filing_target: int
    approval_target: int

    @staticmethod
    def share(part: int, whole: int) -> int:
        return 100 * part // whole if whole else 100


def timeliness(session: Session, study_id: int, filing_target: int, approval_target: int, *,
               site_id: int | None = None) -> Timeliness:
    """Computed in SQL (one aggregate per lag), so 250,000 documents return two rows."""
    filed_day, approved_day = _day(session, Document.created_at), _day(session,
                                                                       Document.approved_at)
    where = [Document.study_id == study_id, Document.status.not_in(("placeholder", "signpost"))]
    if site_id is not None:
        where.append(Document.site_id == site_id)
    filing = _lag(session, _diff(session, filed_day, Document.document_date), filing_target,
                  [*where, Document.document_date.is_not(None)])
    approval = _lag(session, _diff(session, approved_day, filed_day), approval_target,
                    [*where, Document.approved_at.is_not(None)])
    return Timeliness(
        filed=filing[0], filed_on_time=filing[1], mean_filing_days=filing[2],
        approved=approval[0], approved_on_time=approval[1], mean_approval_days=approval[2],
        filing_target=filing_target, approval_target=approval_target)


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _day(session: Session, column):  # type: ignore[no-untyped-def]
    """The UTC calendar day of a timestamp column."""
    if _sqlite(session):
        return func.date(column)  # stored as naive UTC text
    return cast(func.timezone("UTC", column), Date)


def _diff(session: Session, later, earlier):  # type: ignore[no-untyped-def]
    """Whole days from ``earlier`` to ``later`` (both days)."""
    if _sqlite(session):
        return cast(func.julianday(later) - func.julianday(earlier), Integer)
    return later - earlier  # date − date is an integer number of days in PostgreSQL


def _lag(session: Session, days, target: int, where: list) -> tuple[int, int, int | None]:  # type: ignore[no-untyped-def,type-arg]
    n, on_time, total_days = session.execute(select(
        func.count(), func.coalesce(func.sum(case((days <= target, 1), else_=0)), 0),
        func.coalesce(func.sum(days), 0)).where(*where)).one()
    n, total_days = int(n), int(total_days)
    mean = (2 * total_days + n) // (2 * n) if n else None  # rounded half up, no floats
    return n, int(on_time), mean


@dataclass(frozen=True)
class Quality:
    rejections: int
    approvals: int
    open_issues: int

    @property
    def rejection_percent(self) -> int:
        decided = self.rejections + self.approvals
        return 100 * self.rejections // decided if decided else 0


def quality(session: Session, study_id: int, *, site_id: int | None = None,
            approvals: int | None = None) -> Quality:
    """QC figures; ``approvals`` when already known (the dashboard's cache counts them)."""
    issues = select(QcIssue.version_id, QcIssue.raised_at).where(QcIssue.study_id == study_id)
    approvals_q = select(func.count()).select_from(Document).where(
        Document.study_id == study_id, Document.approved_at.is_not(None))
    open_q = select(func.count()).select_from(QcIssue).where(
        QcIssue.study_id == study_id, QcIssue.answered_at.is_(None))
    if site_id is not None:
        docs = select(Document.id).where(Document.site_id == site_id)
        issues = issues.where(QcIssue.document_id.in_(docs))
        approvals_q = approvals_q.where(Document.site_id == site_id)
        open_q = open_q.where(QcIssue.document_id.in_(docs))
    rejections = session.scalar(select(func.count()).select_from(
        issues.group_by(QcIssue.version_id, QcIssue.raised_at).subquery())) or 0
    approved = int(session.scalar(approvals_q) or 0) if approvals is None else approvals
    return Quality(rejections=int(rejections), approvals=approved,
                   open_issues=int(session.scalar(open_q) or 0))


#: Buckets of the QC queue ageing chart: (label, up to this many days).
AGE_BUCKETS = (("0–2 days", 2), ("3–7 days", 7), ("8–14 days", 14), ("15–30 days", 30),
               ("over 30 days", 10**6))


@dataclass(frozen=True)
class InQc:
    document_id: int
    title: str
    artifact_number: str
    site_id: int | None
    since: datetime
    days: int


def qc_queue(session: Session, study_id: int, now: datetime) -> list[InQc]:
    """Documents waiting in QC with the time they were sent (their last transition)."""
    docs = session.execute(select(Document.id, Document.title, Document.artifact_number,
                                  Document.site_id).where(
        Document.study_id == study_id, Document.status == "in_qc")).all()
    if not docs:
        return []
    ids = [str(d[0]) for d in docs]
    since = dict(session.execute(
        select(Event.stream_id, func.max(Event.occurred_at)).where(
            Event.stream_type == "document", Event.type == "document.transitioned",
            Event.stream_id.in_(ids)).group_by(Event.stream_id)).all())
    out = []
    for doc_id, title, number, site in docs:
        at = since.get(str(doc_id)) or now
        out.append(InQc(doc_id, title, number, site, at, max(0, (now - at).days)))
    return sorted(out, key=lambda d: -d.days)


def ageing(queue: list[InQc]) -> list[tuple[str, int]]:
    counts = []
    low = -1
    for label, high in AGE_BUCKETS:
        counts.append((label, sum(low < q.days <= high for q in queue)))
        low = high
    return counts


def approvals_by_week(session: Session, study_id: int, today: date, weeks: int = 12
                      ) -> list[tuple[date, int]]:
    """Trend: documents approved in each of the last ``weeks`` weeks (week starting Monday)."""
    start = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
    day = _day(session, Document.approved_at)
    counts: dict[date, int] = defaultdict(int)
    for d, n in session.execute(select(day, func.count()).where(
            Document.study_id == study_id, Document.approved_at.is_not(None),
            Document.approved_at >= datetime.combine(start, datetime.min.time(), tzinfo=UTC))
            .group_by(day)):
        d = _as_date(d)
        counts[d - timedelta(days=d.weekday())] += int(n)
    return [(start + timedelta(weeks=i), counts.get(start + timedelta(weeks=i), 0))
            for i in range(weeks)]


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])
