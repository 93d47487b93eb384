"""Keeping the dashboard's caches (etmf.tracking.summary) exact in the transaction of every
change, so that the first view after a change costs what any other view costs.

Once a study's caches exist (its :class:`CacheStamp`), each event that changes a figure
adjusts them as its projection runs, through :func:`etmf.audit.store.follower` (recounts
and regroupings wait until just before the transaction commits, once per cell and place):

- a document event recounts the one (artifact, level, place) cell of the document, moves its
  filing/approval lags and approval day in the day histograms (before minus after), updates
  its place in the QC queue, and regroups the expected documents of its place and of every
  site where a person the document belongs to works;
- people linked to sites or documents, and EDL entries added, changed or removed, regroup
  the places concerned;
- milestone dates move the due date of the groups of that milestone;
- an artifact's validity period recounts that artifact and regroups the places it changed.

Studies without caches (never viewed, or a replay of the log into a scratch database) cost
one lookup per event. :func:`etmf.tracking.summary.rebuild` recomputes everything from the
read tables; a test holds the two equal.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import event as sa_event
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etmf.audit.models import Event
from etmf.audit.store import PendingEvent, follower
from etmf.documents.models import Document
from etmf.studies.models import Site
from etmf.tracking import summary
from etmf.tracking.expected import UPKEEP_PENDING, cache_stamp, person_keys
from etmf.tracking.models import (
    CacheStamp,
    DocDays,
    EdlEntry,
    EdlGroup,
    MilestoneDate,
    PersonDocument,
    PersonSite,
    QcWait,
)

#: Document events that change a document's row (and so, perhaps, a figure).
DOCUMENT_EVENTS = ("document.filed", "document.imported", "document.placeholder_created",
                   "document.signpost_created", "document.version_added",
                   "document.transitioned", "document.metadata_changed")

#: Document events that make a new document (there is none before them to look at).
CREATING_EVENTS = ("document.filed", "document.imported", "document.placeholder_created",
                   "document.signpost_created")

Place = summary.Place


def _cached(s: Session, study_id: int | None) -> bool:
    return study_id is not None and cache_stamp(s, study_id) is not None


def _place(level: str, country_id: int | None, site_id: int | None) -> Place:
    if level == "site":
        return ("site", site_id or 0)
    if level == "country":
        return ("country", country_id or 0)
    return ("trial", 0)


#: Above this many cells (places) touched in one transaction, recount the artifacts (regroup
#: the whole study) at once rather than one by one.
_MANY = 200
_PENDING = UPKEEP_PENDING


@dataclass
class _Pending:
    """What the events of one transaction touched, settled once before it commits."""

    cells: dict[int, set[tuple[str, str, int]]] = field(
        default_factory=lambda: defaultdict(set))  # study → (artifact, level, place)
    places: dict[int, set[Place]] = field(default_factory=lambda: defaultdict(set))


def _pending(s: Session) -> _Pending:
    found = s.info.get(_PENDING)
    if found is None:
        found = s.info[_PENDING] = _Pending()
        sa_event.listen(s, "before_commit", _settle, once=True)
    return found


def _regroup(s: Session, places: dict[int, set[Place]]) -> None:
    pending = _pending(s)
    for study_id, at in places.items():
        pending.places[study_id] |= at


def _settle(s: Session) -> None:
    """Recount the cells and regroup the places the transaction's events touched: once
    each however many events touched them (a thousand placeholders at one site regroup it
    once), still inside the transaction."""
    pending = s.info.pop(_PENDING, None)
    if pending is None:
        return
    s.flush()
    for study_id, cells in pending.cells.items():
        if not _cached(s, study_id):
            continue
        if len(cells) > _MANY:
            summary.recount(s, study_id, {a for a, _level, _place in cells})
        else:
            for artifact_id, level, place in sorted(cells):
                summary.count_cell(s, study_id, artifact_id, level, place)
    s.flush()
    for study_id, at in pending.places.items():
        if at and _cached(s, study_id):
            summary.regroup(s, study_id, None if len(at) > _MANY else at)
    s.flush()


def _person_sites(s: Session, document_id: int) -> dict[int, set[Place]]:
    """Sites (by study) where the people a document belongs to work."""
    found: dict[int, set[Place]] = defaultdict(set)
    for site_id, study_id in s.execute(
            select(PersonSite.site_id, Site.study_id).join(
                PersonDocument, PersonDocument.person_id == PersonSite.person_id)
            .join(Site, Site.id == PersonSite.site_id)
            .where(PersonDocument.document_id == document_id).distinct()):
        found[study_id].add(("site", site_id))
    return found


# ---- documents ----------------------------------------------------------------------------------

Days = list[tuple[str, str, int]]  # (artifact, kind, value): a document's histogram entries


def _utc_day(at: datetime) -> date:
    return (at if at.tzinfo is None else at.astimezone(UTC)).date()


def _days(doc: Document | None) -> Days:
    """The document's entries in ``tracking_doc_days``, as summary.recount counts them."""
    if doc is None:
        return []
    found: Days = []
    real = doc.status not in ("placeholder", "signpost")
    filed = _utc_day(doc.created_at)
    if real and doc.document_date is not None:
        found.append((doc.artifact_id, "filing", (filed - doc.document_date).days))
    if doc.approved_at is not None:
        approved = _utc_day(doc.approved_at)
        if real:
            found.append((doc.artifact_id, "approval", (approved - filed).days))
        found.append((doc.artifact_id, "approved", approved.toordinal()))
    return found


def _move_days(s: Session, study_id: int, before: Days, after: Days) -> None:
    delta: dict[tuple[str, str, int], int] = defaultdict(int)
    for key in before:
        delta[key] -= 1
    for key in after:
        delta[key] += 1
    for (artifact_id, kind, value), n in delta.items():
        if not n:
            continue
        row = s.get(DocDays, (study_id, artifact_id, kind, value))
        if row is None:
            row = DocDays(study_id=study_id, artifact_id=artifact_id, kind=kind, value=value,
                          n=0)
            s.add(row)
        row.n += n
        if row.n <= 0:
            s.delete(row)
        s.flush()


def _queue(s: Session, study_id: int, doc: Document, event: PendingEvent) -> None:
    """The document's place in the QC queue: waiting since its last transition."""
    row = s.get(QcWait, doc.id)
    if doc.status != "in_qc":
        if row is not None:
            s.delete(row)
        return
    if event.type == "document.transitioned":
        since: datetime | None = event.occurred_at
    elif row is not None:
        return
    else:  # in QC through a new version: since its last transition, as summary._requeue
        since = s.scalar(select(func.max(Event.occurred_at)).where(
            Event.stream_type == "document", Event.type == "document.transitioned",
            Event.stream_id == str(doc.id)))
    if row is None:
        s.add(QcWait(document_id=doc.id, study_id=study_id, since=since))
    else:
        row.since = since


@follower(*DOCUMENT_EVENTS)
def document_changed(s: Session, event: PendingEvent) -> Callable[[], None] | None:
    doc_id = int(event.stream_id)
    doc = None if event.type in CREATING_EVENTS else s.get(Document, doc_id)
    if doc is None:  # a new document: nobody's yet, nothing counted before
        d = event.data
        study_id = int(d.get("study_id") or event.study_id or 0)
        artifact_id, place = d["artifact_id"], _place(d["level"], d.get("country_id"),
                                                       d.get("site_id"))
        places: dict[int, set[Place]] = defaultdict(set)
    else:
        study_id, artifact_id = doc.study_id, doc.artifact_id
        place = _place(doc.level, doc.country_id, doc.site_id)
        places = _person_sites(s, doc_id)
    if not (_cached(s, study_id) or any(_cached(s, st) for st in places)):
        return None
    before = _days(doc)

    def finish() -> None:
        s.flush()
        now = s.get(Document, doc_id)
        assert now is not None
        if _cached(s, study_id):
            _pending(s).cells[study_id].add((artifact_id, place[0], place[1]))
            _move_days(s, study_id, before, _days(now))
            _queue(s, study_id, now, event)
            places[study_id].add(place)
        _regroup(s, places)

    return finish


# ---- people and the expected document list --------------------------------------------------------


def _after(s: Session, places: Callable[[], dict[int, set[Place]]]
           ) -> Callable[[], None]:
    def finish() -> None:
        s.flush()
        _regroup(s, places())

    return finish


def _site_study(s: Session, site_id: int) -> dict[int, set[Place]]:
    study_id = s.scalar(select(Site.study_id).where(Site.id == site_id))
    return {study_id: {("site", site_id)}} if study_id is not None else {}


@follower("person.site_linked", "person.site_unlinked")
def person_site_changed(s: Session, event: PendingEvent) -> Callable[[], None]:
    return _after(s, lambda: _site_study(s, event.data["site_id"]))


@follower("person.document_linked")
def person_document_linked(s: Session, event: PendingEvent) -> Callable[[], None]:
    return _after(s, lambda: _person_sites(s, event.data["document_id"]))


def _entry_places(study_id: int, entries: Iterable[object]) -> dict[int, set[Place]]:
    return {study_id: {_place(e.level, e.country_id, e.site_id)  # type: ignore[attr-defined]
                       for e in entries}}


class _Entry:
    def __init__(self, d: dict[str, object]) -> None:
        self.level = d["level"]
        self.country_id = d.get("country_id")
        self.site_id = d.get("site_id")


@follower("edl.entries_added")
def entries_added(s: Session, event: PendingEvent) -> Callable[[], None] | None:
    study_id = int(event.stream_id)
    if not _cached(s, study_id):
        return None
    places = _entry_places(study_id, [_Entry(e) for e in event.data["entries"]])
    return _after(s, lambda: places)


@follower("edl.entry_changed", "edl.entry_removed")
def entry_changed(s: Session, event: PendingEvent) -> Callable[[], None] | None:
    entry = s.get(EdlEntry, event.data["entry_id"])
    if entry is None or not _cached(s, entry.study_id):
        return None
    places = _entry_places(entry.study_id, [entry])  # read now: a removed entry is gone after
    return _after(s, lambda: places)


@follower("milestone.dates_set")
def milestone_dates_set(s: Session, event: PendingEvent) -> Callable[[], None] | None:
    study_id = int(event.stream_id)
    if not _cached(s, study_id):
        return None

    def finish() -> None:
        s.flush()
        redue(s, study_id, event.data["code"])

    return finish


def redue(s: Session, study_id: int, code: str) -> None:
    """Give the groups of one milestone their due date (actual, else planned, at the site,
    else the country, else the study: summary.regroup's rule). Due dates depend on the
    milestone and the place only, so every group keeps its entries."""
    at_site: dict[int, date] = {}
    at_country: dict[int, date] = {}
    at_study: date | None = None
    for c_id, s_id, planned, actual in s.execute(
            select(MilestoneDate.country_id, MilestoneDate.site_id, MilestoneDate.planned,
                   MilestoneDate.actual).where(MilestoneDate.study_id == study_id,
                                               MilestoneDate.code == code)):
        when = actual or planned
        if when is None:
            continue
        if s_id is not None:
            at_site[s_id] = when
        elif c_id is not None:
            at_country[c_id] = when
        else:
            at_study = when
    for group in s.scalars(select(EdlGroup).where(EdlGroup.study_id == study_id,
                                                  EdlGroup.milestone == code)):
        due = (at_site.get(group.site_id) if group.site_id is not None else None) or \
            (at_country.get(group.country_id) if group.country_id is not None else None) or \
            at_study
        if group.due != due:
            group.due = due


@follower("expiry.rule_set")
def expiry_rule_set(s: Session, event: PendingEvent) -> Callable[[], None]:
    """Every study's documents of the artifact run out on other days: recount them and
    regroup the places that changed and the sites people's documents count at."""
    artifact_id = event.stream_id

    def finish() -> None:
        s.flush()
        for study_id in s.scalars(select(CacheStamp.study_id)):
            changed = summary.recount(s, study_id, {artifact_id}) or set()
            sites, _artifacts = person_keys(s, study_id)
            changed |= {("site", x) for x in sites}
            if changed:
                summary.regroup(s, study_id, changed)

    return finish
