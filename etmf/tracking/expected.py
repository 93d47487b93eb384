"""The state of every expected document: how many are filed and approved, whether the best
one has expired, its due date from the milestones, whether it is overdue.

Matching: a document fulfils an entry when it is of the same study, artifact and level and
filed at the same country (country level) or site (site level). At site level the documents
of the people working at the site (CVs, licences, training: see ``person_documents``) count
too, wherever they were filed, so one renewed CV counts at every site of its person.
Approved means approved at least once and not withdrawn; a signpost (the record is held in
another system) counts as approved.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from etmf.documents.models import Document
from etmf.studies.models import Site
from etmf.tracking.expiry import effective_expiry, validity_days
from etmf.tracking.models import EdlEntry, MilestoneDate, PersonDocument, PersonSite

Key = tuple[str, str, int | None]  # artifact, level, place (country or site id; None: trial)


@dataclass
class EntryState:
    entry: EdlEntry
    filed: int = 0  # documents with a file (any state but withdrawn), placeholders excluded
    approved: int = 0
    in_qc: int = 0
    expires_on: date | None = None  # of the longest-valid approved document, if it expires
    due: date | None = None
    today: date = field(default_factory=date.today)

    @property
    def counted(self) -> int:
        return min(self.approved, self.entry.required_count)

    @property
    def complete(self) -> bool:
        return self.approved >= self.entry.required_count

    @property
    def expired(self) -> bool:
        return self.complete and self.expires_on is not None and self.expires_on < self.today

    @property
    def overdue(self) -> bool:
        return not self.complete and self.due is not None and self.due < self.today

    @property
    def problem(self) -> str | None:
        """What an inspector would say: missing, not approved, expired — or None."""
        if self.complete:
            return "expired" if self.expired else None
        return "not approved" if self.filed > self.approved else "missing"


def _place(level: str, country_id: int | None, site_id: int | None) -> int | None:
    return site_id if level == "site" else country_id if level == "country" else None


_APPROVED = (Document.approved_at.is_not(None) & (Document.status != "obsolete")) | (
    Document.status == "signpost")


def entry_states(session: Session, study_id: int, today: date, *, site_id: int | None = None,
                 country_id: int | None = None, levels: tuple[str, ...] | None = None
                 ) -> list[EntryState]:
    """Every EDL entry of the study (or of one site / country) with its state on ``today``."""
    q = select(EdlEntry).where(EdlEntry.study_id == study_id)
    if site_id is not None:
        q = q.where(EdlEntry.site_id == site_id)
    if country_id is not None:
        q = q.where(EdlEntry.country_id == country_id)
    if levels is not None:
        q = q.where(EdlEntry.level.in_(levels))
    entries = list(session.scalars(q.order_by(EdlEntry.id)))
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

    _due_dates(session, study_id, list(states.values()))
    return list(states.values())


def _better(best: dict[Key, date], key: Key, ends: date | None) -> None:
    """Keep the latest expiry of a place (``date.max``: one of them never expires)."""
    best[key] = max(best.get(key, date.min), ends or date.max)


def _due_dates(session: Session, study_id: int, states: list[EntryState]) -> None:
    """Due date of each entry: its milestone's actual (else planned) date at its site, else its
    country, else the study."""
    rows = session.execute(select(MilestoneDate).where(MilestoneDate.study_id == study_id)
                           ).scalars().all()
    if not rows:
        return
    dates: dict[tuple[str, str, int | None], date] = {}
    for r in rows:
        when = r.actual or r.planned
        if when is None:
            continue
        scope = ("site", r.site_id) if r.site_id else ("country", r.country_id) \
            if r.country_id else ("trial", None)
        dates[(r.code, *scope)] = when  # type: ignore[index]
    for s in states:
        e = s.entry
        if e.milestone is None:
            continue
        for scope in (("site", e.site_id), ("country", e.country_id), ("trial", None)):
            if scope[1] is None and scope[0] != "trial":
                continue
            found = dates.get((e.milestone, *scope))  # type: ignore[arg-type]
            if found is not None:
                s.due = found
                break
