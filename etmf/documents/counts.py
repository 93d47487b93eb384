"""The TMF tree's document counts, kept beside the documents in the same transaction.

Counting a study's documents by artifact and status means reading every one of them: most
of a second at a quarter of a million documents, and ten times longer with ten times the
documents. The counts are therefore kept in ``document_counts`` (see
:class:`~etmf.documents.models.DocumentCount`): whenever a flush inserts, deletes or moves a
document (study, country, site, artifact or status changed), the rows it leaves and enters
are adjusted before the documents themselves are written, in the same transaction. Every
writer of documents goes through the ORM (projections of events, replay included), so one
``before_flush`` hook covers them all; code that writes documents with bulk Core statements
(benchmarks, repairs) calls :func:`rebuild` afterwards.

Permission scoping stays in the query: a site-limited user reads the rows of their sites
and of trial- and country-level documents, a user who may not see drafts only the visible
statuses, an inspector limited to zones only those zones.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import Connection, delete, event, func, insert, literal, select
from sqlalchemy.orm import Session, UOWTransaction

from etmf.documents.models import Document, DocumentCount

#: ``country_key`` and ``site_key`` of the rows holding a study's totals.
TOTAL = -1
#: ``country_key`` / ``site_key`` of documents without a country / site.
NONE = 0

_PLACE_FIELDS = ("study_id", "country_id", "site_id", "artifact_id", "status", "zone",
                 "section")

Key = tuple[int, int, int, str, str, str, str]


def _key(study_id: int, country_id: int | None, site_id: int | None, artifact_id: str,
         status: str, zone: str, section: str) -> Key:
    return (study_id, country_id or NONE, site_id or NONE, artifact_id, status, zone, section)


def _moved(doc: Document) -> bool:
    from sqlalchemy import inspect

    attrs = inspect(doc).attrs
    return any(attrs[name].history.has_changes() for name in _PLACE_FIELDS)


@event.listens_for(Session, "before_flush")
def _keep_counts(session: Session, _flush: UOWTransaction, _instances: object) -> None:
    deltas: Counter[Key] = Counter()
    for obj in session.new:
        if isinstance(obj, Document):
            deltas[_key(*(getattr(obj, f) for f in _PLACE_FIELDS))] += 1
    moved = [obj for obj in session.dirty if isinstance(obj, Document) and _moved(obj)]
    gone = [obj for obj in session.deleted if isinstance(obj, Document)]
    if not deltas and not moved and not gone:
        return
    conn = session.connection()
    if moved or gone:
        # The rows as the database has them (the last flush), not as the attributes were
        # first loaded: a document may move twice in one transaction.
        ids = [obj.id for obj in (*moved, *gone)]
        cols = [getattr(Document, f) for f in _PLACE_FIELDS]
        for row in conn.execute(select(*cols).where(Document.id.in_(ids))):
            deltas[_key(*row)] -= 1
        for obj in moved:
            deltas[_key(*(getattr(obj, f) for f in _PLACE_FIELDS))] += 1
    _apply(conn, deltas)


def _apply(conn: Connection, deltas: Counter[Key]) -> None:
    rows: Counter[Key] = Counter()
    for (study, country, site, artifact, status, zone, section), n in deltas.items():
        if n:
            rows[(study, country, site, artifact, status, zone, section)] += n
            rows[(study, TOTAL, TOTAL, artifact, status, zone, section)] += n
    values = [dict(study_id=k[0], country_key=k[1], site_key=k[2], artifact_id=k[3],
                   status=k[4], zone=k[5], section=k[6], n=n) for k, n in rows.items() if n]
    if not values:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    table = DocumentCount.__table__
    stmt = upsert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={"n": table.c.n + stmt.excluded.n})
    conn.execute(stmt, values)


def rebuild(conn: Connection, study_id: int | None = None) -> None:
    """Recount from the documents (after bulk Core writes, or to repair)."""
    t = DocumentCount.__table__
    d = Document.__table__
    where = [] if study_id is None else [d.c.study_id == study_id]
    conn.execute(delete(t).where(*([] if study_id is None else [t.c.study_id == study_id])))
    place = (d.c.study_id, func.coalesce(d.c.country_id, NONE), func.coalesce(d.c.site_id, NONE),
             d.c.artifact_id, d.c.status, d.c.zone, d.c.section)
    conn.execute(insert(t).from_select(
        ["study_id", "country_key", "site_key", "artifact_id", "status", "zone", "section", "n"],
        select(*place, func.count()).where(*where).group_by(*place)))
    totals = (d.c.study_id, d.c.artifact_id, d.c.status, d.c.zone, d.c.section)
    conn.execute(insert(t).from_select(
        ["study_id", "country_key", "site_key", "artifact_id", "status", "zone", "section", "n"],
        select(d.c.study_id, literal(TOTAL), literal(TOTAL), d.c.artifact_id, d.c.status,
               d.c.zone, d.c.section, func.count()).where(*where).group_by(*totals)))


def _scoped(q, study_id: int, *, sites: frozenset[int] | None,  # type: ignore[no-untyped-def]
            statuses: Iterable[str] | None, zones: frozenset[str] | None,
            by_place: bool):
    c = DocumentCount
    q = q.where(c.study_id == study_id)
    if sites is None and not by_place:
        q = q.where(c.country_key == TOTAL)
    else:
        q = q.where(c.country_key != TOTAL)
        if sites is not None:
            q = q.where(c.site_key.in_([NONE, *sorted(sites)]))
    if statuses is not None:
        q = q.where(c.status.in_(list(statuses)))
    if zones is not None:
        q = q.where(c.zone.in_(sorted(zones)))
    return q


def tree(session: Session, study_id: int, *, sites: frozenset[int] | None = None,
         statuses: Iterable[str] | None = None,
         zones: frozenset[str] | None = None) -> list[tuple[str, str, str, str, int]]:
    """(zone, section, artifact_id, status, count) of the documents this scope sees."""
    c = DocumentCount
    total = func.sum(c.n)
    q = _scoped(select(c.zone, c.section, c.artifact_id, c.status, total), study_id,
                sites=sites, statuses=statuses, zones=zones, by_place=False)
    rows = session.execute(q.group_by(c.zone, c.section, c.artifact_id, c.status)
                           .having(total > 0)).all()
    return [(z, s, a, st, int(n)) for z, s, a, st, n in rows]


def count(session: Session, study_id: int, *, sites: frozenset[int] | None = None,
          statuses: Iterable[str] | None = None, zones: frozenset[str] | None = None,
          zone: str | None = None, artifact: str | None = None, status: str | None = None,
          site: int | None = None, country: int | None = None) -> int:
    """How many documents this scope sees with these filters (those the list offers that
    the counts know: zone, artifact, status, site, country)."""
    c = DocumentCount
    q = _scoped(select(func.coalesce(func.sum(c.n), 0)), study_id, sites=sites,
                statuses=statuses, zones=zones,
                by_place=site is not None or country is not None)
    if zone is not None:
        q = q.where(c.zone == zone)
    if artifact is not None:
        q = q.where(c.artifact_id == artifact)
    if status is not None:
        q = q.where(c.status == status)
    if site is not None:
        q = q.where(c.site_key == site, c.site_key != NONE)
    if country is not None:
        q = q.where(c.country_key == country, c.country_key != NONE)
    return int(session.scalar(q) or 0)
