"""The dashboard's figures in SQL: completeness, missing, overdue and expired summed by the
database over the expected document list, timeliness and the approvals trend from small
histograms — so a study of 500 sites and 250,000 documents is summarised without building
one Python object per expected document or reading every document.

Caches of ``documents`` and of the EDL (``tracking_doc_counts``, ``tracking_doc_days``,
``tracking_edl_groups``, ``tracking_edl_group_expiry``, ``tracking_qc_queue``; marked not
projected) hold what the figures need. :func:`refresh` builds a study's caches the first
time its dashboard is viewed (:func:`rebuild`); from then on every event adjusts them in its
own transaction (etmf.tracking.upkeep), so a view after a change reads them like any other.
The figures are the same as summing :func:`etmf.tracking.expected.entry_states` with
:func:`etmf.tracking.metrics.group_by` (a test holds them equal); the few site entries that
people's documents (CVs, licences filed elsewhere) contribute to are computed that way.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import (
    String,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from etmf.audit.models import Event
from etmf.documents.models import Document
from etmf.tracking import metrics
from etmf.tracking.expected import _APPROVED, entry_states, person_keys
from etmf.tracking.expiry import validity_days
from etmf.tracking.metrics import (
    Completeness,
    InQc,
    Quality,
    Timeliness,
    _as_date,
    _day,
    _diff,
)
from etmf.tracking.models import (
    CacheStamp,
    DocCount,
    DocDays,
    EdlEntry,
    EdlGroup,
    EdlGroupExpiry,
    MilestoneDate,
    QcWait,
)

GROUPINGS = ("study", "zone", "site", "country", "milestone")


# ---- the caches ---------------------------------------------------------------------------------


def is_fresh(session: Session, study_id: int) -> bool:
    """Whether the study's caches exist. Once built they are kept exact by every event, in
    the transaction of the event (etmf.tracking.upkeep), so existing means up to date."""
    return session.scalar(select(CacheStamp.seq).where(CacheStamp.study_id == study_id)) \
        is not None


def refresh(write_session: Callable[[], AbstractContextManager[Session]],
            study_id: int) -> bool:
    """Build the study's caches if they do not exist yet (a write transaction). Returns
    whether anything was computed."""
    with write_session() as s:
        if s.get(CacheStamp, study_id) is not None:
            return False
        rebuild(s, study_id)
        s.commit()
        return True


def ensure_fresh(session: Session,
                 write_session: Callable[[], AbstractContextManager[Session]],
                 study_id: int) -> None:
    """Build the study's caches if needed, then end ``session``'s read snapshot so that its
    next statement sees them."""
    if not is_fresh(session, study_id):
        refresh(write_session, study_id)
        session.commit()


def rebuild(s: Session, study_id: int) -> None:
    """Recompute every cache of the study from the read tables (inside the caller's write
    transaction): the reference the incremental upkeep must always equal."""
    for table in (DocCount, DocDays, EdlGroup, EdlGroupExpiry, QcWait):
        s.execute(delete(table).where(table.study_id == study_id))
    recount(s, study_id, None)
    _requeue(s, study_id, None)
    regroup(s, study_id, None)
    head = s.scalar(select(func.max(Event.seq))) or 0
    stamp = s.get(CacheStamp, study_id)
    if stamp is None:
        s.add(CacheStamp(study_id=study_id, seq=head))
    else:
        stamp.seq = head
    s.flush()


Place = tuple[str, int]  # level and place (site or country id; 0: the trial)


def _counts(s: Session, study_id: int, where: list  # type: ignore[type-arg]
            ) -> dict[tuple[str, str, int], dict[str, object]]:
    """The ``tracking_doc_counts`` rows of the documents selected by ``where``."""
    validity = validity_days(s)
    approved, no_expiry = _APPROVED, Document.expiry_date.is_(None)
    counts: dict[tuple[str, str, int], dict[str, object]] = {}
    ends: dict[tuple[str, str, int], date] = {}
    for a, level, c_id, s_id, filed, appr, in_qc, ever, max_exp, max_dated, undated in \
            s.execute(select(
                Document.artifact_id, Document.level, Document.country_id, Document.site_id,
                func.sum(case((Document.status.in_(("placeholder", "obsolete")), 0), else_=1)),
                func.sum(case((approved, 1), else_=0)),
                func.sum(case((Document.status == "in_qc", 1), else_=0)),
                func.sum(case((Document.approved_at.is_not(None), 1), else_=0)),
                func.max(case((approved & ~no_expiry, Document.expiry_date))),
                func.max(case((approved & no_expiry, Document.document_date))),
                func.sum(case((approved & no_expiry & Document.document_date.is_(None), 1),
                              else_=0)),
            ).where(*where).group_by(Document.artifact_id, Document.level,
                                     Document.country_id, Document.site_id)):
        place = (s_id if level == "site" else c_id if level == "country" else None) or 0
        key = (a, level, place)
        row = counts.setdefault(key, dict(
            study_id=study_id, artifact_id=a, level=level, place=place, filed=0, approved=0,
            in_qc=0, approved_ever=0, expires_on=None))
        for name, n in (("filed", filed), ("approved", appr), ("in_qc", in_qc),
                        ("approved_ever", ever)):
            row[name] += int(n or 0)  # type: ignore[operator]
        # As expected.entry_states: the latest end of the approved documents that expire
        # (date.max: one of them never does).
        found = [_as_date(max_exp)] if max_exp is not None else []
        if a in validity:
            if max_dated is not None:
                found.append(_as_date(max_dated) + timedelta(days=validity[a]))
            if undated:
                found.append(date.max)
        if found:
            ends[key] = max(ends.get(key, date.min), *found)
    for key, end in ends.items():
        counts[key]["expires_on"] = None if end == date.max else end
    return counts


def count_cell(s: Session, study_id: int, artifact_id: str, level: str, place: int) -> None:
    """Recount the documents of one artifact at one place (a few rows: the upkeep of one
    document event)."""
    t = DocCount
    s.execute(delete(t).where(t.study_id == study_id, t.artifact_id == artifact_id,
                              t.level == level, t.place == place))
    where = [Document.study_id == study_id, Document.artifact_id == artifact_id,
             Document.level == level]
    if level == "site":
        where.append(Document.site_id == place)
    elif level == "country":
        where.append(Document.country_id == place)
    counts = _counts(s, study_id, where)
    if counts:
        s.execute(insert(DocCount.__table__), list(counts.values()))


def recount(s: Session, study_id: int, artifacts: set[str] | None) -> set[Place] | None:
    """Recount the documents of some artifacts (None: all); returns the places whose counts
    changed (None: all of them)."""
    where = [Document.study_id == study_id]
    before: dict[tuple[str, str, int], tuple[object, ...]] = {}
    if artifacts is not None:
        where.append(Document.artifact_id.in_(sorted(artifacts)))
        t = DocCount.__table__
        for row in s.execute(select(t).where(t.c.study_id == study_id,
                                             t.c.artifact_id.in_(sorted(artifacts)))):
            before[(row.artifact_id, row.level, row.place)] = tuple(row)
    for table in (DocCount, DocDays):
        q = delete(table).where(table.study_id == study_id)
        if artifacts is not None:
            q = q.where(table.artifact_id.in_(sorted(artifacts)))
        s.execute(q)
    counts = _counts(s, study_id, where)
    if counts:
        s.execute(insert(DocCount.__table__), list(counts.values()))
    cols = [c.name for c in DocCount.__table__.columns]
    after = {k: tuple(v[c] for c in cols) for k, v in counts.items()}
    changed = {(k[1], k[2]) for k in before.keys() | after.keys()
               if before.get(k) != after.get(k)}
    filed_day, approved_day = _day(s, Document.created_at), _day(s, Document.approved_at)
    real = Document.status.not_in(("placeholder", "signpost"))
    days: list[dict[str, object]] = []
    for kind, value, extra in (
            ("filing", _diff(s, filed_day, Document.document_date),
             [real, Document.document_date.is_not(None)]),
            ("approval", _diff(s, approved_day, filed_day),
             [real, Document.approved_at.is_not(None)]),
            ("approved", approved_day, [Document.approved_at.is_not(None)])):
        for a, v, n in s.execute(select(Document.artifact_id, value, func.count())
                                 .where(*where, *extra).group_by(Document.artifact_id, value)):
            v = _as_date(v).toordinal() if kind == "approved" else int(v)
            days.append(dict(study_id=study_id, artifact_id=a, kind=kind, value=v, n=int(n)))
    if days:
        s.execute(insert(DocDays.__table__), days)
    return None if artifacts is None else changed


def _requeue(s: Session, study_id: int, ids: list[int] | None) -> None:
    """The study's documents waiting in QC (of ``ids``; None: all) and since when."""
    q = delete(QcWait).where(QcWait.study_id == study_id)
    docs = select(Document.id).where(Document.study_id == study_id,
                                     Document.status == "in_qc")
    chunks: list[list[int] | None] = [None]
    if ids is not None:
        chunks = [ids[i:i + 500] for i in range(0, len(ids), 500)]
    for chunk in chunks:
        if chunk is not None:
            s.execute(q.where(QcWait.document_id.in_(chunk)))
            waiting = list(s.scalars(docs.where(Document.id.in_(chunk))))
        else:
            s.execute(q)
            waiting = list(s.scalars(docs))
        since: dict[str, datetime] = {}
        for i in range(0, len(waiting), 500):
            since.update(s.execute(
                select(Event.stream_id, func.max(Event.occurred_at)).where(
                    Event.stream_type == "document", Event.type == "document.transitioned",
                    Event.stream_id.in_([str(d) for d in waiting[i:i + 500]]))
                .group_by(Event.stream_id)).all())
        if waiting:
            s.execute(insert(QcWait.__table__), [
                dict(document_id=d, study_id=study_id, since=since.get(str(d)))
                for d in waiting])


def _least(a, b):  # type: ignore[no-untyped-def]
    return case((a < b, a), else_=b)


def _at(table, places: set[Place]):  # type: ignore[no-untyped-def]
    """Rows of the given places (``table`` has site_id and country_id columns; a site's
    rows carry its id, a country's only the country's, the trial's neither)."""
    sites = sorted(p for lvl, p in places if lvl == "site")
    countries = sorted(p for lvl, p in places if lvl == "country")
    parts = [table.site_id.in_(sites)] if sites else []
    if countries:
        parts.append(and_(table.site_id.is_(None), table.country_id.in_(countries)))
    if ("trial", 0) in places:
        parts.append(and_(table.site_id.is_(None), table.country_id.is_(None)))
    return or_(*parts) if parts else literal(False)


def regroup(s: Session, study_id: int, places: set[Place] | None) -> None:
    """Sum the study's EDL entries (at ``places``; None: everywhere) by zone, site, country
    and milestone from the document counts (the entries people's documents count at: entry
    by entry, as entry_states)."""
    first = {}
    for table in (EdlGroup, EdlGroupExpiry):
        q = delete(table).where(table.study_id == study_id)
        s.execute(q if places is None else q.where(_at(table, places)))
        first[table] = 1 + (s.scalar(select(func.max(table.row)).where(
            table.study_id == study_id)) or 0)
    e = EdlEntry
    c = aliased(DocCount)
    at_site, at_country, at_study = (aliased(MilestoneDate) for _ in range(3))
    place = case((e.level == "site", e.site_id), (e.level == "country", e.country_id), else_=0)
    approved, filed = func.coalesce(c.approved, 0), func.coalesce(c.filed, 0)
    required = e.required_count
    counted = _least(approved, required)
    present = _least(case((filed > approved, filed), else_=approved), required)
    complete = approved >= required
    due = func.coalesce(at_site.actual, at_site.planned, at_country.actual, at_country.planned,
                        at_study.actual, at_study.planned)
    where = [e.study_id == study_id]
    if places is not None:
        where.append(_at(e, places))
    person_sites, person_artifacts = person_keys(
        s, study_id, None if places is None else {p for lvl, p in places if lvl == "site"})
    if person_sites:
        where.append(~and_(e.level == "site", e.site_id.in_(sorted(person_sites)),
                           e.artifact_id.in_(sorted(person_artifacts))))
    joined = select(e.zone, e.site_id, e.country_id, e.milestone).select_from(e).outerjoin(
        c, and_(c.study_id == e.study_id, c.artifact_id == e.artifact_id, c.level == e.level,
                c.place == place)
    ).outerjoin(at_site, and_(
        at_site.study_id == e.study_id, at_site.code == e.milestone,
        at_site.site_id == e.site_id)
    ).outerjoin(at_country, and_(
        at_country.study_id == e.study_id, at_country.code == e.milestone,
        at_country.site_id.is_(None), at_country.country_id == e.country_id)
    ).outerjoin(at_study, and_(
        at_study.study_id == e.study_id, at_study.code == e.milestone,
        at_study.site_id.is_(None), at_study.country_id.is_(None))
    ).where(*where)
    Group = tuple[object, object, object, object, object]  # noqa: N806
    groups: dict[Group, list[int]] = {}
    for zone, site_id, country_id, milestone, when, *sums in s.execute(
            joined.add_columns(
                due, func.count(), func.sum(required), func.sum(counted),
                func.sum(required - present), func.sum(present - counted),
                func.sum(case((complete, 0), else_=1)))
            .group_by(e.zone, e.site_id, e.country_id, e.milestone, due)):
        groups[(zone, site_id, country_id, milestone, _as_date(when) if when else None)] = \
            [int(v or 0) for v in sums]
    expiring: dict[tuple[object, ...], int] = defaultdict(int)
    for zone, site_id, country_id, milestone, ends, n in s.execute(
            joined.add_columns(c.expires_on, func.count()).where(
                complete, c.expires_on.is_not(None))
            .group_by(e.zone, e.site_id, e.country_id, e.milestone, c.expires_on)):
        expiring[(zone, site_id, country_id, milestone, _as_date(ends))] += int(n)
    if person_sites:
        # Only the day-independent fields are kept (counts, due date, expiry date).
        for st in entry_states(s, study_id, date.min, levels=("site",),
                               site_ids=person_sites, artifacts=person_artifacts, kept=False):
            x = st.entry
            sums = groups.setdefault((x.zone, x.site_id, x.country_id, x.milestone, st.due),
                                     [0] * 6)
            for i, v in enumerate((1, x.required_count, st.counted, st.missing,
                                   st.not_approved, not st.complete)):
                sums[i] += int(v)
            if st.complete and st.expires_on is not None:
                expiring[(x.zone, x.site_id, x.country_id, x.milestone, st.expires_on)] += 1
    if groups:
        s.execute(insert(EdlGroup.__table__), [dict(
            study_id=study_id, row=i, zone=k[0], site_id=k[1], country_id=k[2],
            milestone=k[3], due=k[4], entries=v[0], expected=v[1], approved=v[2],
            missing=v[3], not_approved=v[4], incomplete=v[5])
            for i, (k, v) in enumerate(groups.items(), first[EdlGroup])])
    if expiring:
        s.execute(insert(EdlGroupExpiry.__table__), [dict(
            study_id=study_id, row=i, zone=k[0], site_id=k[1], country_id=k[2],
            milestone=k[3], expires_on=k[4], n=n)
            for i, (k, n) in enumerate(expiring.items(), first[EdlGroupExpiry])])


# ---- completeness --------------------------------------------------------------------------------


def summary(session: Session, study_id: int, today: date,
            labels: dict[str, Callable[[object], str]], *,
            site_ids: Collection[int] | None = None, zones: Collection[str] | None = None
            ) -> dict[str, list[Completeness]]:
    """Completeness of the study's EDL grouped by study, zone, site, country and milestone
    (keys as the dashboard's: "study", zone, site id or None, country id or None, milestone
    code or ""), limited to entries at ``site_ids`` (trial and country entries stay) and in
    ``zones``. Reads the caches: call :func:`refresh` first."""
    g, x = EdlGroup, EdlGroupExpiry
    found: dict[str, dict[object, Completeness]] = {name: {} for name in GROUPINGS}

    def scoped(table, q):  # type: ignore[no-untyped-def]
        q = q.where(table.study_id == study_id)
        if site_ids is not None:
            q = q.where(or_(table.site_id.is_(None), table.site_id.in_(sorted(site_ids))))
        if zones is not None:
            q = q.where(table.zone.in_(sorted(zones)))
        return q

    overdue = func.sum(case((g.due < today, g.incomplete), else_=0))
    sums = (func.sum(g.entries), func.sum(g.expected), func.sum(g.approved),
            func.sum(g.missing), func.sum(g.not_approved), overdue)
    columns = {"study": literal("study"), "zone": g.zone, "site": g.site_id,
               "country": g.country_id, "milestone": func.coalesce(g.milestone, "")}
    parts = [_grouped(scoped(g, select(literal(name), cast(col, String), *sums)), name, col)
             for name, col in columns.items()]
    for name, key, n, expected, approved, missing, not_approved, late in session.execute(
            union_all(*parts)):
        if n is None:
            continue
        key = _key(name, key)
        found[name][key] = Completeness(
            key, labels[name](key), expected=int(expected), approved=int(approved),
            missing=int(missing), not_approved=int(not_approved), overdue=int(late or 0),
            entries=int(n))
    x_columns = {"study": literal("study"), "zone": x.zone, "site": x.site_id,
                 "country": x.country_id, "milestone": func.coalesce(x.milestone, "")}
    x_parts = [_grouped(scoped(x, select(literal(name), cast(col, String), func.sum(x.n))
                               .where(x.expires_on < today)), name, col)
               for name, col in x_columns.items()]
    for name, key, n in session.execute(union_all(*x_parts)):
        key = _key(name, key)
        if key in found[name]:
            found[name][key].expired += int(n or 0)
    return {name: list(groups.values()) for name, groups in found.items()}


def _grouped(q, name: str, col):  # type: ignore[no-untyped-def]
    return q if name == "study" else q.group_by(col)


def _key(name: str, value: object) -> object:
    """Keys come back as text from the union; give back the dashboard's keys."""
    if name in ("site", "country"):
        return None if value is None else int(str(value))
    return value


# ---- timeliness, quality, trend from the caches -------------------------------------------------------


def _lag(session: Session, study_id: int, kind: str, target: int) -> tuple[int, int, int | None]:
    n, on_time, total_days = session.execute(select(
        func.coalesce(func.sum(DocDays.n), 0),
        func.coalesce(func.sum(case((DocDays.value <= target, DocDays.n), else_=0)), 0),
        func.coalesce(func.sum(DocDays.value * DocDays.n), 0)).where(
        DocDays.study_id == study_id, DocDays.kind == kind)).one()
    n, total_days = int(n), int(total_days)
    mean = (2 * total_days + n) // (2 * n) if n else None  # as metrics.timeliness
    return n, int(on_time), mean


def timeliness(session: Session, study_id: int, filing_target: int,
               approval_target: int) -> Timeliness:
    """:func:`etmf.tracking.metrics.timeliness` of a whole study, from the cache."""
    filing = _lag(session, study_id, "filing", filing_target)
    approval = _lag(session, study_id, "approval", approval_target)
    return Timeliness(
        filed=filing[0], filed_on_time=filing[1], mean_filing_days=filing[2],
        approved=approval[0], approved_on_time=approval[1], mean_approval_days=approval[2],
        filing_target=filing_target, approval_target=approval_target)


def approvals(session: Session, study_id: int) -> int:
    """Documents approved at least once (the quality figure's denominator part)."""
    return int(session.scalar(select(func.coalesce(func.sum(DocCount.approved_ever), 0))
                              .where(DocCount.study_id == study_id)) or 0)


def approvals_by_week(session: Session, study_id: int, today: date, weeks: int = 12
                      ) -> list[tuple[date, int]]:
    """:func:`etmf.tracking.metrics.approvals_by_week`, from the cache."""
    start = today - timedelta(days=today.weekday() + 7 * (weeks - 1))
    counts: dict[date, int] = defaultdict(int)
    for value, n in session.execute(
            select(DocDays.value, func.sum(DocDays.n)).where(
                DocDays.study_id == study_id, DocDays.kind == "approved",
                DocDays.value >= start.toordinal()).group_by(DocDays.value)):
        d = date.fromordinal(int(value))
        counts[d - timedelta(days=d.weekday())] += int(n)
    return [(start + timedelta(weeks=i), counts.get(start + timedelta(weeks=i), 0))
            for i in range(weeks)]


def qc_queue(session: Session, study_id: int, now: datetime, limit: int = 20
             ) -> tuple[list[InQc], list[tuple[str, int]]]:
    """The ``limit`` documents longest in QC and the ageing buckets of the whole queue
    (:func:`etmf.tracking.metrics.qc_queue` and ``ageing``), from the cache."""
    counts = []
    low: datetime | None = None  # waiting more than the previous bucket's days
    for label, high in metrics.AGE_BUCKETS:
        # ``days`` (whole days waited, 0 if unknown or in the future) <= high
        # ⇔ waiting since after now − (high + 1) days.
        after = now - timedelta(days=high + 1) if high < 10**5 else None
        cond = [QcWait.study_id == study_id]
        if after is not None:
            cond.append(or_(QcWait.since.is_(None), QcWait.since > after))
        if low is not None:
            cond.append(QcWait.since <= low)
        counts.append((label, int(session.scalar(select(func.count()).where(*cond)) or 0)))
        low = after
    # The longest waiting first, those of unknown date last: two walks of the (study, since)
    # index, then the documents of the few found (not a sort of the whole queue).
    waits = session.execute(
        select(QcWait.since, QcWait.document_id).where(
            QcWait.study_id == study_id, QcWait.since.is_not(None))
        .order_by(QcWait.since, QcWait.document_id).limit(limit)).all()
    if len(waits) < limit:
        waits += session.execute(
            select(QcWait.since, QcWait.document_id).where(
                QcWait.study_id == study_id, QcWait.since.is_(None))
            .order_by(QcWait.document_id).limit(limit - len(waits))).all()
    docs = {d.id: d for d in session.execute(
        select(Document.id, Document.title, Document.artifact_number, Document.site_id)
        .where(Document.id.in_([d for _s, d in waits])))} if waits else {}
    rows = [(since, d, docs[d].title, docs[d].artifact_number, docs[d].site_id)
            for since, d in waits]
    top = [InQc(doc_id, title, number, site, since or now,
                max(0, (now - (since or now)).days))
           for since, doc_id, title, number, site in rows]
    return top, counts


# ---- everything the dashboard shows -----------------------------------------------------------------


@dataclass
class Figures:
    groups: dict[str, list[Completeness]]
    timeliness: Timeliness
    quality: Quality
    queue: list[InQc]  # the longest waiting
    ageing: list[tuple[str, int]]
    trend: list[tuple[date, int]]
    has_edl: bool


def figures(session: Session, study_id: int, now: datetime,
            labels: dict[str, Callable[[object], str]], *, filing_target: int,
            approval_target: int, site_ids: Collection[int] | None = None,
            zones: Collection[str] | None = None) -> Figures:
    """Every figure of the study's dashboard (the caches must be fresh: :func:`refresh`)."""
    today = now.date()
    groups = summary(session, study_id, today, labels, site_ids=site_ids, zones=zones)
    queue, ageing = qc_queue(session, study_id, now)
    return Figures(
        groups=groups,
        timeliness=timeliness(session, study_id, filing_target, approval_target),
        quality=metrics.quality(session, study_id, approvals=approvals(session, study_id)),
        queue=queue, ageing=ageing,
        trend=approvals_by_week(session, study_id, today),
        has_edl=bool(groups["study"]))
