"""Is a site ready (for activation, for an inspection)? What is missing, expired, pending.

``site_gaps`` is the gap finder of the CTMS site-activation gate (ctms.sites.services).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.documents.models import Document, QcIssue
from etmf.reference_model.model import load_reference_model
from etmf.studies.models import Site
from etmf.tracking.expected import EntryState, entry_states

#: Milestones by which a document must be in place for a site to open: first country
#: approval, clinical infrastructure ready, site live.
START_UP_MILESTONES = frozenset({"01", "02", "03"})


@dataclass(frozen=True)
class Gap:
    artifact_id: str
    artifact_name: str
    problem: str  # "missing" | "expired" | "not approved"
    document_id: int | None


def _best_document(session: Session, state: EntryState) -> int | None:
    e = state.entry
    q = select(Document.id).where(
        Document.study_id == e.study_id, Document.artifact_id == e.artifact_id,
        Document.level == e.level, Document.status != "obsolete")
    q = q.where(Document.site_id == e.site_id) if e.level == "site" else \
        q.where(Document.country_id == e.country_id, Document.site_id.is_(None)) \
        if e.level == "country" else q
    return session.scalar(q.order_by(Document.approved_at.is_(None), Document.id.desc())
                          .limit(1)) or e.placeholder_id


def site_gaps(session: Session, site_id: int, today: date) -> list[Gap]:
    """The site's essential documents that are not approved-and-unexpired on ``today``.

    Essential: the site's EDL entries and its country's, due by a start-up milestone (or
    without a milestone). A site (or study) without an EDL has no gaps: nothing is expected.
    """
    site = session.get(Site, site_id)
    if site is None:
        return []
    model = load_reference_model()
    states = entry_states(session, site.study_id, today, site_id=site_id) + [
        s for s in entry_states(session, site.study_id, today, country_id=site.country_id,
                                levels=("country",))]
    gaps = []
    for s in states:
        if s.entry.milestone is not None and s.entry.milestone not in START_UP_MILESTONES:
            continue
        problem = s.problem
        if problem is None:
            continue
        gaps.append(Gap(s.entry.artifact_id, model.artifact(s.entry.artifact_id).name, problem,
                        _best_document(session, s) if problem != "missing"
                        else s.entry.placeholder_id))
    return sorted(gaps, key=lambda g: (model.artifact(g.artifact_id).number, g.problem))


@dataclass
class Readiness:
    missing: list[EntryState]
    not_approved: list[EntryState]
    expired: list[EntryState]
    pending_qc: list[Document]
    unsigned: list[Document]
    open_issues: list[QcIssue]

    @property
    def ready(self) -> bool:
        return not (self.missing or self.not_approved or self.expired or self.pending_qc
                    or self.unsigned or self.open_issues)


def readiness(session: Session, study_id: int, today: date, *,
              site_id: int | None = None) -> Readiness:
    """Inspection readiness of a study (or one site): every open point, by kind."""
    from etmf.workflows.models import SignatureRequest

    states = entry_states(session, study_id, today, site_id=site_id)
    docs = select(Document).where(Document.study_id == study_id)
    issues = select(QcIssue).join(Document, Document.id == QcIssue.document_id).where(
        QcIssue.study_id == study_id, QcIssue.answered_at.is_(None))
    if site_id is not None:
        docs = docs.where(Document.site_id == site_id)
        issues = issues.where(Document.site_id == site_id)
    pending = list(session.scalars(docs.where(Document.status == "in_qc").order_by(Document.id)))
    unsigned = list(session.scalars(docs.where(Document.id.in_(
        select(SignatureRequest.document_id).where(SignatureRequest.status == "open")))
        .order_by(Document.id)))
    return Readiness(
        missing=[s for s in states if s.problem == "missing"],
        not_approved=[s for s in states if s.problem == "not approved"],
        expired=[s for s in states if s.problem == "expired"],
        pending_qc=pending, unsigned=unsigned,
        open_issues=list(session.scalars(issues.order_by(QcIssue.id))))
