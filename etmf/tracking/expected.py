"""The state of every expected document: how many are filed and approved, whether the best
one has expired, its due date from the milestones, whether it is overdue.

Matching: a document fulfils an entry when it is of the same study, artifact and level and
filed at the same country (country level) or site (site level). At site level the documents
of the people working at the site (CVs, licences, training: see ``person_documents``) count
too, wherever they were filed, so one renewed CV counts at every site of its person.
Approved means approved at least once and not withdrawn; a signpost (the record is held in
another system) counts as approved.

Once a study's dashboard caches exist (etmf.tracking.summary), the counts and expiry of each
(artifact, level, place) are read from ``tracking_doc_counts`` joined to the entries, instead
of summing the study's documents again: the same figures (a test holds them equal), kept by
every event. The entries people's documents count at, and any session whose events have not
yet been settled into the caches, take the documents themselves.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from etmf.documents.models import Document
from etmf.studies.models import Site
from etmf.tracking.expiry import effective_expiry, validity_days
from etmf.tracking.models import (
    CacheStamp,
    DocCount,
    EdlEntry,
    MilestoneDate,
    PersonDocument,
    PersonSite,
)

Key = tuple[str, str, int | None]  # artifact, level, place (country or site id; None: trial)

#: ``Session.info`` key of the cache upkeep a transaction's events left to settle before it
#: commits (etmf.tracking.upkeep): while it is there, the caches are behind the documents.
UPKEEP_PENDING = "tracking_upkeep"


@dataclass(slots=True)
class EntryState:
    """One EDL entry and its figures; the derived fields are set once by :meth:`settle` (plain
    attributes, not properties: the dashboard sums them over tens of thousands of entries)."""

    entry: Any  # a row of ``edl_entries`` (attributes as the EdlEntry columns)
    filed: int = 0  # documents with a file (any state but withdrawn), placeholders excluded
    approved: int = 0
    in_qc: int = 0
    expires_on: date | None = None  # of the longest-valid approved document, if it expires
    due: date | None = None
    today: date = field(default_factory=date.today)
    counted: int = 0  # approved, up to the required count
    complete: bool = False
    expired: bool = False
    overdue: bool = False
    #: What an inspector would say: "missing", "not approved", "expired" — or None.
    problem: str | None = None
    missing: int = 0  # required documents with no file at all
    not_approved: int = 0  # filed, not (yet) approved, up to the required count

    def settle(self) -> EntryState:
        required = self.entry.required_count
        self.counted = min(self.approved, required)
        self.complete = self.approved >= required
        self.expired = self.complete and self.expires_on is not None and \
            self.expires_on < self.today
        self.overdue = not self.complete and self.due is not None and self.due < self.today
        if self.complete:
            self.problem = "expired" if self.expired else None
        else:
            self.problem = "not approved" if self.filed > self.approved else "missing"
        present = min(max(self.filed, self.approved), required)
        self.missing = required - present
        self.not_approved = present - self.counted
        return self


def _place(level: str, country_id: int | None, site_id: int | None) -> int | None:
    return site_id if level == "site" else country_id if level == "country" else None


_APPROVED = (Document.approved_at.is_not(None) & (Document.status != "obsolete")) | (
    Document.status == "signpost")


def cache_stamp(session: Session, study_id: int) -> CacheStamp | None:
    """The study's :class:`CacheStamp` (None: its caches were never built), held by the
    session: its identity map keeps objects only while something refers to them, and every
    event of a command asks again."""
    stamp = session.get(CacheStamp, study_id)
    if stamp is not None:
        session.info.setdefault("tracking_stamps", {})[study_id] = stamp
    return stamp


def counts_are_kept(session: Session, study_id: int) -> bool:
    """Whether ``tracking_doc_counts`` holds the study's documents as this session sees them:
    the caches exist and no event of this transaction is waiting to be settled into them."""
    return not session.info.get(UPKEEP_PENDING) and cache_stamp(session, study_id) is not None


def person_keys(session: Session, study_id: int, at: Collection[int] | None = None
                ) -> tuple[set[int], set[str]]:
    """Sites (of ``at``; None: all) and artifacts that people's documents may count at (a
    superset: every pair)."""
    sites, artifacts = set(), set()
    q = select(PersonSite.site_id, Document.artifact_id).join(
        PersonDocument, PersonDocument.person_id == PersonSite.person_id
    ).join(Document, Document.id == PersonDocument.document_id
    ).join(Site, Site.id == PersonSite.site_id).where(
        Site.study_id == study_id, Document.status != "obsolete").distinct()
    if at is not None:
        q = q.where(PersonSite.site_id.in_(sorted(at)))
    for site_id, artifact_id in session.execute(q):
        sites.add(site_id)
        artifacts.add(artifact_id)
    return sites, artifacts


def _entries(study_id: int, site_id: int | None, country_id: int | None,
             levels: tuple[str, ...] | None, site_ids: Collection[int] | None,
             artifacts: Collection[str] | None) -> list:  # type: ignore[type-arg]
    """The conditions choosing the study's entries."""
    where = [EdlEntry.study_id == study_id]
    if site_id is not None:
        where.append(EdlEntry.site_id == site_id)
    if country_id is not None:
        where.append(EdlEntry.country_id == country_id)
    if levels is not None:
        where.append(EdlEntry.level.in_(levels))
    if site_ids is not None:
        where.append(EdlEntry.site_id.in_(sorted(site_ids)))
    if artifacts is not None:
        where.append(EdlEntry.artifact_id.in_(sorted(artifacts)))
    return where


def entry_states(session: Session, study_id: int, today: date, *, site_id: int | None = None,
                 country_id: int | None = None, levels: tuple[str, ...] | None = None,
                 site_ids: Collection[int] | None = None,
                 artifacts: Collection[str] | None = None, problems_only: bool = False,
                 kept: bool = True) -> list[EntryState]:
    """Every EDL entry of the study (or of one site / country / some sites, some artifacts)
    with its state on ``today``, in the order of the entries' ids. ``problems_only``: only
    the entries with a problem (missing, not approved or expired; a quarter of a large
    study's entries, chosen by the database when the counts are kept). ``kept``: read the
    counts from the dashboard's caches when they are up to date (False: always from the
    documents, the reference the caches are tested against)."""
    if not kept or not counts_are_kept(session, study_id):
        found = _from_documents(session, study_id, today, site_id=site_id,
                                country_id=country_id, levels=levels, site_ids=site_ids,
                                artifacts=artifacts)
        return [s for s in found if s.problem] if problems_only else found
    where = _entries(study_id, site_id, country_id, levels, site_ids, artifacts)
    at: Collection[int] | None = [site_id] if site_id is not None else site_ids
    person_sites, person_artifacts = person_keys(session, study_id, at)
    people: list[EntryState] = []
    if person_sites and (levels is None or "site" in levels):
        # People's documents count wherever they work: entry by entry, from the documents.
        wanted = person_artifacts if artifacts is None else person_artifacts & set(artifacts)
        if wanted:
            people = _from_documents(session, study_id, today, site_id=site_id,
                                     country_id=country_id, levels=("site",),
                                     site_ids=person_sites, artifacts=wanted)
        where.append(~and_(EdlEntry.level == "site", EdlEntry.site_id.in_(sorted(person_sites)),
                           EdlEntry.artifact_id.in_(sorted(person_artifacts))))
    e, c = EdlEntry.__table__, DocCount.__table__
    place = case((e.c.level == "site", e.c.site_id), (e.c.level == "country", e.c.country_id),
                 else_=0)
    if problems_only:  # incomplete, or expired: a superset of EntryState.settle's rule
        where.append(or_(func.coalesce(c.c.approved, 0) < e.c.required_count,
                         c.c.expires_on < today))
        people = [s for s in people if s.problem]
    rows = session.execute(
        select(e, c.c.filed, c.c.approved, c.c.in_qc, c.c.expires_on)
        .select_from(e.outerjoin(c, and_(
            c.c.study_id == e.c.study_id, c.c.artifact_id == e.c.artifact_id,
            c.c.level == e.c.level, c.c.place == place)))
        .where(*where).order_by(e.c.id)).all()
    n = len(e.columns)  # the counts follow the entry's columns
    states = [EntryState(r, filed=r[n] or 0, approved=r[n + 1] or 0, in_qc=r[n + 2] or 0,
                         expires_on=r[n + 3], today=today) for r in rows]
    if people:
        states = sorted(states + people, key=lambda s: s.entry.id)
    _due_dates(session, study_id, states)
    settled = [s.settle() for s in states]
    return [s for s in settled if s.problem] if problems_only else settled


def _from_documents(session: Session, study_id: int, today: date, *,
                    site_id: int | None = None, country_id: int | None = None,
                    levels: tuple[str, ...] | None = None,
                    site_ids: Collection[int] | None = None,
                    artifacts: Collection[str] | None = None) -> list[EntryState]:
    """:func:`entry_states` summing the documents themselves."""
    # Plain rows, not ORM objects: a study of 500 sites has some 60,000 entries.
    entries = session.execute(
        select(EdlEntry.__table__)
        .where(*_entries(study_id, site_id, country_id, levels, site_ids, artifacts))
        .order_by(EdlEntry.id)).all()
    if not entries:
        return []
    states = {e.id: EntryState(e, today=today) for e in entries}
    by_key: dict[Key, list[EntryState]] = defaultdict(list)
    for s in states.values():
        e = s.entry
        by_key[(e.artifact_id, e.level, _place(e.level, e.country_id, e.site_id))].append(s)

    docs = select(
        Document.artifact_id, Document.level, Document.country_id, Document.site_id,
        func.sum(case((Document.status.in_(("placeholder", "obsolete")), 0), else_=1)),
        func.sum(case((_APPROVED, 1), else_=0)),
        func.sum(case((Document.status == "in_qc", 1), else_=0)),
    ).where(Document.study_id == study_id).group_by(
        Document.artifact_id, Document.level, Document.country_id, Document.site_id)
    if site_id is not None:
        docs = docs.where(Document.site_id == site_id)
    if country_id is not None:
        docs = docs.where(Document.country_id == country_id)
    if site_ids is not None:
        docs = docs.where(Document.site_id.in_(sorted(site_ids)))
    if artifacts is not None:
        docs = docs.where(Document.artifact_id.in_(sorted(artifacts)))
    for artifact_id, level, c_id, s_id, filed, approved, in_qc in session.execute(docs):
        for s in by_key.get((artifact_id, level, _place(level, c_id, s_id)), ()):
            s.filed += int(filed or 0)
            s.approved += int(approved or 0)
            s.in_qc += int(in_qc or 0)

    validity = validity_days(session)
    # Expiry of approved documents that can expire (few: CVs, licences, approvals …).
    exp_q = select(Document.id, Document.artifact_id, Document.level, Document.country_id,
                   Document.site_id, Document.document_date, Document.expiry_date).where(
        Document.study_id == study_id, _APPROVED,
        or_(Document.expiry_date.is_not(None), Document.artifact_id.in_(list(validity))))
    if site_id is not None:
        exp_q = exp_q.where(Document.site_id == site_id)
    if country_id is not None:
        exp_q = exp_q.where(Document.country_id == country_id)
    if site_ids is not None:
        exp_q = exp_q.where(Document.site_id.in_(sorted(site_ids)))
    if artifacts is not None:
        exp_q = exp_q.where(Document.artifact_id.in_(sorted(artifacts)))
    best: dict[Key, date] = {}
    local_ids: set[tuple[int, int]] = set()  # (document, site) already counted
    for doc_id, artifact_id, level, c_id, s_id, d_date, e_date in session.execute(exp_q):
        key = (artifact_id, level, _place(level, c_id, s_id))
        _better(best, key, effective_expiry(e_date, d_date, artifact_id, validity))
        if s_id is not None:
            local_ids.add((doc_id, s_id))

    # People's documents count at every site where they work.
    site_entry_artifacts = {k[0] for k in by_key if k[1] == "site"}
    if site_entry_artifacts:
        pq = select(PersonSite.site_id, Document.id, Document.artifact_id, Document.status,
                    Document.approved_at, Document.document_date, Document.expiry_date
                    ).join(PersonDocument, PersonDocument.person_id == PersonSite.person_id
                    ).join(Document, Document.id == PersonDocument.document_id
                    ).join(Site, Site.id == PersonSite.site_id).where(
            Site.study_id == study_id, Document.artifact_id.in_(site_entry_artifacts),
            Document.status != "obsolete")
        if site_id is not None:
            pq = pq.where(PersonSite.site_id == site_id)
        if site_ids is not None:
            pq = pq.where(PersonSite.site_id.in_(sorted(site_ids)))
        seen: set[tuple[int, int]] = set()
        for p_site, doc_id, artifact_id, status, approved_at, d_date, e_date in \
                session.execute(pq):
            if (doc_id, p_site) in local_ids or (doc_id, p_site) in seen:
                continue
            seen.add((doc_id, p_site))
            key = (artifact_id, "site", p_site)
            for s in by_key.get(key, ()):
                # Filed elsewhere: the local aggregate did not count it.
                s.filed += 1
                if approved_at is not None:
                    s.approved += 1
                s.in_qc += status == "in_qc"
            if approved_at is not None:
                _better(best, key, effective_expiry(e_date, d_date, artifact_id, validity))
    for key, found in best.items():
        for s in by_key.get(key, ()):
            s.expires_on = None if found == date.max else found

    settled = list(states.values())
    _due_dates(session, study_id, settled)
    return [s.settle() for s in settled]


def _better(best: dict[Key, date], key: Key, ends: date | None) -> None:
    """Keep the latest expiry of a place (``date.max``: one of them never expires)."""
    best[key] = max(best.get(key, date.min), ends or date.max)


def _due_dates(session: Session, study_id: int, states: list[EntryState]) -> None:
    """Due date of each entry: its milestone's actual (else planned) date at its site, else its
    country, else the study."""
    at_site: dict[tuple[str, int], date] = {}
    at_country: dict[tuple[str, int], date] = {}
    at_study: dict[str, date] = {}
    for code, c_id, s_id, planned, actual in session.execute(
            select(MilestoneDate.code, MilestoneDate.country_id, MilestoneDate.site_id,
                   MilestoneDate.planned, MilestoneDate.actual)
            .where(MilestoneDate.study_id == study_id)):
        when = actual or planned
        if when is None:
            continue
        if s_id is not None:
            at_site[(code, s_id)] = when
        elif c_id is not None:
            at_country[(code, c_id)] = when
        else:
            at_study[code] = when
    if not (at_site or at_country or at_study):
        return
    for s in states:
        e = s.entry
        code = e.milestone
        if code is None:
            continue
        s.due = (at_site.get((code, e.site_id)) if e.site_id is not None else None) or \
            (at_country.get((code, e.country_id)) if e.country_id is not None else None) or \
            at_study.get(code)
