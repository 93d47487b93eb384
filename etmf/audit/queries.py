"""Reading the audit trail: filtered lists and exports (CSV, PDF) for inspectors and auditors.

Read-only by construction: nothing here writes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from etmf.audit.models import Event
from etmf.audit.views import ACTION_LABELS, EventView, describe_event


@dataclass(frozen=True)
class AuditFilter:
    study_id: int | None = None
    actor_id: int | None = None
    stream_type: str | None = None
    stream_id: str | None = None
    event_type: str | None = None
    date_from: date | None = None
    date_to: date | None = None


def _query(f: AuditFilter) -> Select[tuple[Event]]:
    q = select(Event)
    if f.study_id is not None:
        q = q.where(Event.study_id == f.study_id)
    if f.actor_id is not None:
        q = q.where(Event.actor_id == f.actor_id)
    if f.stream_type:
        q = q.where(Event.stream_type == f.stream_type)
    if f.stream_id:
        q = q.where(Event.stream_id == f.stream_id)
    if f.event_type:
        q = q.where(Event.type == f.event_type)
    if f.date_from:
        q = q.where(Event.occurred_at >= datetime.combine(f.date_from, time.min, UTC))
    if f.date_to:
        q = q.where(Event.occurred_at < datetime.combine(f.date_to + timedelta(days=1),
                                                         time.min, UTC))
    return q


def count(session: Session, f: AuditFilter) -> int:
    return int(session.scalar(select(func.count()).select_from(_query(f).subquery())) or 0)


def page(session: Session, f: AuditFilter, *, offset: int = 0, limit: int = 100,
         newest_first: bool = False) -> list[EventView]:
    order = Event.seq.desc() if newest_first else Event.seq
    rows = session.scalars(_query(f).order_by(order).offset(offset).limit(limit)).all()
    return [describe_event(e) for e in rows]


def actors(session: Session, f: AuditFilter) -> list[tuple[int | None, str]]:
    """Who appears in the (unfiltered-by-actor) trail, for the filter's drop-down."""
    base = AuditFilter(study_id=f.study_id, stream_type=f.stream_type, stream_id=f.stream_id)
    rows = session.execute(
        _query(base).with_only_columns(Event.actor_id, Event.actor_name).distinct()
        .order_by(Event.actor_name)
    ).all()
    return [(r[0], r[1]) for r in rows]


def event_types(session: Session, f: AuditFilter) -> list[tuple[str, str]]:
    base = AuditFilter(study_id=f.study_id, stream_type=f.stream_type, stream_id=f.stream_id)
    rows = session.scalars(_query(base).with_only_columns(Event.type).distinct()
                           .order_by(Event.type)).all()
    return [(t, ACTION_LABELS.get(t, t)) for t in rows]


def stream_types(session: Session, f: AuditFilter) -> list[str]:
    """The kinds of record in this trail (documents, sites, signature requests, …)."""
    base = AuditFilter(study_id=f.study_id, actor_id=f.actor_id)
    return list(session.scalars(_query(base).with_only_columns(Event.stream_type).distinct()
                                .order_by(Event.stream_type)))


def iter_all(session: Session, f: AuditFilter, batch: int = 2000) -> Iterator[Event]:
    last = 0
    while True:
        rows = session.scalars(_query(f).where(Event.seq > last).order_by(Event.seq)
                               .limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


CSV_COLUMNS = ["seq", "time_utc", "actor_id", "actor", "action", "event_type", "object",
               "field", "old_value", "new_value", "reason", "client_address", "request_id",
               "hash"]


def csv_rows(events: Iterator[Event]) -> Iterator[list[str]]:
    """One row per changed field (old → new), so a spreadsheet shows every value (AUD-4)."""
    for event in events:
        view = describe_event(event)
        base = [str(event.seq), event.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "" if event.actor_id is None else str(event.actor_id), event.actor_name,
                view.action, event.type, view.object]
        tail = [event.reason or "", event.client_addr or "", event.request_id or "",
                event.hash]
        changes = view.changes or [("", "", "")]
        for field, old, new in changes:
            yield base + [field, old, new] + tail


def _csv_safe(cell: str) -> str:
    # Spreadsheet formula injection: a cell starting with = + - @ is shown, not run.
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def stream_csv(events: Iterator[Event]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue()
    for row in csv_rows(events):
        buf.seek(0)
        buf.truncate()
        writer.writerow([_csv_safe(c) for c in row])
        yield buf.getvalue()


def render_pdf(title: str, subtitle: str, views: Sequence[EventView], generated_at: datetime,
               generated_by: str) -> bytes:
    """A printable audit trail: every event with its old → new values, times in UTC."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("small", fontSize=7.5, leading=9)
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=12 * mm,
                            rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
                            title=title, author="eTMF", invariant=1)
    story = [Paragraph(escape(title), styles["Title"]),
             Paragraph(escape(subtitle), styles["BodyText"]),
             Paragraph(escape(f"Generated {generated_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} "
                              f"UTC by {generated_by}. All times are UTC."), small),
             Spacer(1, 4 * mm)]
    data = [[Paragraph(h, small) for h in ("#", "Time (UTC)", "Who", "What", "Object",
                                           "Changes (old → new)", "Reason")]]
    for v in views:
        changes = "<br/>".join(escape(f"{f}: {o} → {n}") for f, o, n in v.changes)
        data.append([Paragraph(str(v.seq), small),
                     Paragraph(v.when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"), small),
                     Paragraph(escape(v.actor), small), Paragraph(escape(v.action), small),
                     Paragraph(escape(v.object), small), Paragraph(changes, small),
                     Paragraph(escape(v.reason or ""), small)])
    table = Table(data, repeatRows=1, colWidths=[12 * mm, 32 * mm, 38 * mm, 38 * mm,
                                                 38 * mm, 86 * mm, 28 * mm])
    table.setStyle(TableStyle([
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf2")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    story.append(table)
    doc.build(story)
    return buf.getvalue()
