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

from sqlalchemy import func, select
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
    groups: dict[object, Completeness] = {}
    for s in states:
        k = key(s)
        g = groups.get(k)
        if g is None:
            g = groups[k] = Completeness(k, label(k))
        g.entries += 1
        g.expected += s.entry.required_count
        g.approved += s.counted
        present = min(max(s.filed, s.approved), s.entry.required_count)
        g.missing += s.entry.required_count - present
        g.not_approved += present - s.counted
        g.overdue += s.overdue
        g.expired += s.expired
    return list(groups.values())


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
    filing, approval = _lags(session, study_id, site_id)
    return Timeliness(
        filed=len(filing), filed_on_time=sum(d <= filing_target for d in filing),
        mean_filing_days=round(sum(filing) / len(filing)) if filing else None,
        approved=len(approval), approved_on_time=sum(d <= approval_target for d in approval),
        mean_approval_days=round(sum(approval) / len(approval)) if approval else None,
        filing_target=filing_target, approval_target=approval_target)


def _lags(session: Session, study_id: int, site_id: int | None) -> tuple[list[int], list[int]]:
    """Filing and approval lags in days, aggregated by day so that 250,000 documents come
    back as a few hundred rows."""
    filed_day = func.date(Document.created_at) if _sqlite(session) else \
        func.cast(Document.created_at, _Date())
    approved_day = func.date(Document.approved_at) if _sqlite(session) else \
        func.cast(Document.approved_at, _Date())
    where = [Document.study_id == study_id, Document.status.not_in(("placeholder", "signpost"))]
    if site_id is not None:
        where.append(Document.site_id == site_id)
    filing: list[int] = []
    for d_date, f_day, n in session.execute(
            select(Document.document_date, filed_day, func.count()).where(
                *where, Document.document_date.is_not(None))
            .group_by(Document.document_date, filed_day)):
        filing += [(_as_date(f_day) - _as_date(d_date)).days] * n
    approval: list[int] = []
    for f_day, a_day, n in session.execute(
            select(filed_day, approved_day, func.count()).where(
                *where, Document.approved_at.is_not(None)).group_by(filed_day, approved_day)):
        approval += [(_as_date(a_day) - _as_date(f_day)).days] * n
    return filing, approval


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def _Date():  # type: ignore[no-untyped-def]  # noqa: N802
    from sqlalchemy import Date

    return Date()


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


@dataclass(frozen=True)
class Quality:
    rejections: int
    approvals: int
    open_issues: int

    @property
    def rejection_percent(self) -> int:
        decided = self.rejections + self.approvals
        return 100 * self.rejections // decided if decided else 0


def quality(session: Session, study_id: int, *, site_id: int | None = None) -> Quality:
    issues = select(QcIssue.version_id, QcIssue.raised_at).where(QcIssue.study_id == study_id)
    approvals = select(func.count()).select_from(Document).where(
        Document.study_id == study_id, Document.approved_at.is_not(None))
    open_q = select(func.count()).select_from(QcIssue).where(
        QcIssue.study_id == study_id, QcIssue.answered_at.is_(None))
    if site_id is not None:
        docs = select(Document.id).where(Document.site_id == site_id)
        issues = issues.where(QcIssue.document_id.in_(docs))
        approvals = approvals.where(Document.site_id == site_id)
        open_q = open_q.where(QcIssue.document_id.in_(docs))
    rejections = session.scalar(select(func.count()).select_from(
        issues.group_by(QcIssue.version_id, QcIssue.raised_at).subquery())) or 0
    return Quality(rejections=int(rejections), approvals=int(session.scalar(approvals) or 0),
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
    counts: dict[date, int] = defaultdict(int)
    rows = session.scalars(select(Document.approved_at).where(
        Document.study_id == study_id, Document.approved_at.is_not(None),
        Document.approved_at >= datetime.combine(start, datetime.min.time(), tzinfo=UTC)))
    for at in rows:
        d = at.date()
        counts[d - timedelta(days=d.weekday())] += 1
    return [(start + timedelta(weeks=i), counts.get(start + timedelta(weeks=i), 0))
            for i in range(weeks)]

