"""Is a site ready (for activation, for an inspection)? What is missing, expired, pending.

``site_gaps`` is the gap finder of the CTMS site-activation gate (ctms.sites.services).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import case, func, or_, select
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


def _best_documents(session: Session, study_id: int,
                    states: list[EntryState]) -> dict[tuple[str, str, int | None], int]:
    """The document to open for each entry's place (its artifact at its site, country or the
    trial): approved first, then the newest; one statement for all of them."""
    wanted = {_place_key(s.entry) for s in states}
    if not wanted:
        return {}
    place = case((Document.level == "site", Document.site_id),
                 (Document.level == "country", Document.country_id), else_=None)
    rank = func.row_number().over(
        partition_by=(Document.artifact_id, Document.level, place),
        order_by=(Document.approved_at.is_(None), Document.id.desc())).label("rank")
    inner = select(Document.id, Document.artifact_id, Document.level, place.label("place"),
                   rank).where(
        Document.study_id == study_id, Document.status != "obsolete",
        Document.artifact_id.in_(sorted({k[0] for k in wanted})),
        Document.level.in_(sorted({k[1] for k in wanted})),
        # A country's entry is met by what is filed at the country, not at one of its sites.
        or_(Document.level != "country", Document.site_id.is_(None))).subquery()
    found: dict[tuple[str, str, int | None], int] = {}
    for doc_id, artifact_id, level, at in session.execute(
            select(inner.c.id, inner.c.artifact_id, inner.c.level, inner.c.place)
            .where(inner.c.rank == 1)):
        if (artifact_id, level, at) in wanted:
            found[(artifact_id, level, at)] = doc_id
    return found


def _place_key(e: Any) -> tuple[str, str, int | None]:
    return (e.artifact_id, e.level,
            e.site_id if e.level == "site" else e.country_id if e.level == "country" else None)


def _open(states: list[EntryState]) -> list[EntryState]:
    """The entries that stop a site opening: due by a start-up milestone (or by none), and
    missing, not approved or expired."""
    return [s for s in states if s.problem is not None and (
        s.entry.milestone is None or s.entry.milestone in START_UP_MILESTONES)]


def _as_gaps(states: list[EntryState],
             best: dict[tuple[str, str, int | None], int]) -> list[Gap]:
    model = load_reference_model()
    gaps = [Gap(s.entry.artifact_id, model.artifact(s.entry.artifact_id).name,
                s.problem or "", s.entry.placeholder_id if s.problem == "missing"
                else best.get(_place_key(s.entry)) or s.entry.placeholder_id)
            for s in states]
    return sorted(gaps, key=lambda g: (model.artifact(g.artifact_id).number, g.problem))


def site_gaps(session: Session, site_id: int, today: date) -> list[Gap]:
    """The site's essential documents that are not approved-and-unexpired on ``today``.

    Essential: the site's EDL entries and its country's, due by a start-up milestone (or
    without a milestone). A site (or study) without an EDL has no gaps: nothing is expected.
    """
    site = session.get(Site, site_id)
    if site is None:
        return []
    states = entry_states(session, site.study_id, today, site_id=site_id,
                          problems_only=True) + \
        entry_states(session, site.study_id, today, country_id=site.country_id,
                     levels=("country",), problems_only=True)
    gaps = _open(states)
    return _as_gaps(gaps, _best_documents(session, site.study_id,
                                          [s for s in gaps if s.problem != "missing"]))


def study_site_gaps(session: Session, study_id: int, today: date,
                    site_ids: Collection[int] | None = None) -> dict[int, list[Gap]]:
    """``site_gaps`` of many sites of a study (all by default) at once: the EDL's states are
    worked out once for the study, not once per site and again per site for its country.

    A site without gaps is absent from the result."""
    every = session.execute(select(Site.id, Site.country_id).where(
        Site.study_id == study_id)).all()
    sites = [s for s in every if site_ids is None or s.id in site_ids]
    if not sites:
        return {}
    if len(sites) == len(every):  # one pass: the counts are grouped by place anyway
        states = entry_states(session, study_id, today, levels=("site", "country"),
                              problems_only=True)
    else:
        states = entry_states(session, study_id, today, levels=("site",),
                              site_ids=[x.id for x in sites], problems_only=True) + \
            entry_states(session, study_id, today, levels=("country",), problems_only=True)
    by_site: dict[int, list[EntryState]] = defaultdict(list)
    by_country: dict[int, list[EntryState]] = defaultdict(list)
    for s in states:
        if s.entry.level == "site":
            by_site[s.entry.site_id].append(s)
        else:
            by_country[s.entry.country_id].append(s)
    wanted = [(site.id, _open(by_site.get(site.id, []) + by_country.get(site.country_id, [])))
              for site in sites]
    best = _best_documents(session, study_id, [s for _, gaps in wanted for s in gaps
                                               if s.problem != "missing"])
    return {site_id: _as_gaps(gaps, best) for site_id, gaps in wanted if gaps}


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

    states = entry_states(session, study_id, today, site_id=site_id, problems_only=True)
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
