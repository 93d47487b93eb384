"""An accurate and complete copy of one record (REC-2): its metadata, every version's exact
bytes, every signature validated, and its audit trail, in human-readable and electronic form.

The copy is a ZIP:

* ``record.json`` — the electronic form (format ``etmf-record-export-v1``): document
  metadata, versions (with SHA-256 and the file name inside the ZIP), signature validation
  of every signed version, and the record's audit trail with each event's data and hash;
* ``record.pdf`` — the same, human-readable: metadata, versions, signatures and the audit
  trail (old → new values), all times in UTC;
* ``versions/<number>-<label>-<file name>`` — each version's bytes, read through the
  verifying reader (a file that fails its SHA-256 refuses the export, never copies it);
* ``SHA256SUMS`` — the checksum of every other file, for checking the copy with
  ``sha256sum -c``.

Read-only: building a copy writes nothing (an inspector's export is audited by the access
guard like any download).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from etmf.audit.models import Event
from etmf.audit.views import EventView, describe_event
from etmf.bootstrap import Services
from etmf.documents.lifecycle import status_label
from etmf.documents.models import Document, DocumentVersion
from etmf.records.integrity import CORRUPT, MISSING
from etmf.reference_model.model import load_reference_model
from etmf.signing.models import SignatureValidation
from etmf.studies.models import Country, Site, Study
from etmf.workflows.models import SignatureRequest
from storage.errors import BlobIntegrityError, BlobNotFound

FORMAT = "etmf-record-export-v1"


class StoredFileFailed(Exception):
    """A version's stored file failed its SHA-256 or is missing: no copy is made."""

    def __init__(self, version: DocumentVersion, problem: str, cause: Exception) -> None:
        super().__init__(str(cause))
        self.version, self.problem, self.cause = version, problem, cause


@dataclass(frozen=True)
class RecordCopy:
    filename: str
    data: bytes


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat()


def _utc(moment: datetime | None) -> str:
    return "" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:120] or "file"


def record_events(session: Session, doc: Document) -> list[Event]:
    """The record's audit trail: the document's own stream, its signature requests, the
    validations of its versions and every access to it, in log order."""
    request_ids = [str(i) for i in session.scalars(
        select(SignatureRequest.id).where(SignatureRequest.document_id == doc.id))]
    validation_ids = [str(i) for i in session.scalars(select(SignatureValidation.id).where(
        SignatureValidation.document_id == doc.id))]
    streams = [(Event.stream_type == "document") & (Event.stream_id == str(doc.id)),
               (Event.stream_type == "document_access") & (Event.stream_id == str(doc.id))]
    if request_ids:
        streams.append((Event.stream_type == "signature_request")
                       & Event.stream_id.in_(request_ids))
    if validation_ids:
        streams.append((Event.stream_type == "signature_validation")
                       & Event.stream_id.in_(validation_ids))
    return list(session.scalars(select(Event).where(or_(*streams)).order_by(Event.seq)))


def _signatures(svc: Services, version: DocumentVersion, data: bytes,
                now: datetime) -> list[dict[str, Any]]:
    if version.mime != "application/pdf":
        return []
    from etmf.signing import pki
    from etmf.signing.errors import SigningError
    from etmf.signing.service import report_payload
    from etmf.signing.validation import validate_pdf

    roots, crls = pki.trust_roots(svc), pki.current_crls(svc)
    try:
        reports = pki.off_event_loop(lambda: validate_pdf(data, roots, crls=crls, now=now))
    except SigningError:  # not a readable PDF: it carries no signature we could show
        return []
    return [report_payload(r) for r in reports]


def build_record_copy(session: Session, svc: Services, doc: Document, *, exported_by: str,
                      now: datetime) -> RecordCopy:
    """The ZIP described in the module docstring, for one document."""
    from etmf.signing.service import overall_status

    study = session.get(Study, doc.study_id)
    assert study is not None
    artifact = load_reference_model().artifact(doc.artifact_id)
    site = session.get(Site, doc.site_id) if doc.site_id else None
    country = session.get(Country, doc.country_id) if doc.country_id else None
    versions = list(session.scalars(select(DocumentVersion).where(
        DocumentVersion.document_id == doc.id).order_by(DocumentVersion.number)))
    by_id = {v.id: v for v in versions}

    files: dict[str, bytes] = {}
    version_rows: list[dict[str, Any]] = []
    signature_rows: list[dict[str, Any]] = []
    for v in versions:
        try:
            with svc.blobs.open(v.sha256) as fh:  # verifies the SHA-256 while reading
                data = fh.read()
        except BlobIntegrityError as exc:
            raise StoredFileFailed(v, CORRUPT, exc) from exc
        except BlobNotFound as exc:
            raise StoredFileFailed(v, MISSING, exc) from exc
        name = f"versions/{v.number:03d}-{_safe(v.label)}-{_safe(v.filename)}"
        files[name] = data
        signed_from = by_id.get(v.signed_from_version_id) if v.signed_from_version_id else None
        version_rows.append({
            "number": v.number, "label": v.label, "status": v.status,
            "status_label": status_label(v.status), "filename": v.filename, "mime": v.mime,
            "size": v.size, "sha256": v.sha256, "page_count": v.page_count, "note": v.note,
            "created_at": _iso(v.created_at), "created_by": v.created_by_name,
            "signed_from_version": signed_from.number if signed_from else None,
            "file": name, "current": v.id == doc.current_version_id})
        reports = _signatures(svc, v, data, now)
        if reports:
            signature_rows.append({"version": v.number, "label": v.label,
                                   "sha256": v.sha256, "overall": overall_status(reports),
                                   "checked_at": _iso(now), "signatures": reports})

    events = record_events(session, doc)
    metadata = {
        "id": doc.id, "study": study.protocol_number, "study_title": study.title,
        "artifact_number": artifact.number, "artifact_name": artifact.name,
        "zone": doc.zone, "section": doc.section, "sub_artifact": doc.sub_artifact,
        "level": doc.level, "country": country.code if country else None,
        "site": site.number if site else None, "title": doc.title, "person": doc.person,
        "language": doc.language,
        "document_date": doc.document_date.isoformat() if doc.document_date else None,
        "expiry_date": doc.expiry_date.isoformat() if doc.expiry_date else None,
        "status": doc.status, "status_label": status_label(doc.status),
        "filed_at": _iso(doc.created_at), "approved_at": _iso(doc.approved_at),
        "signpost_system": doc.signpost_system, "signpost_location": doc.signpost_location,
    }
    record = {
        "format": FORMAT, "exported_at": _iso(now), "exported_by": exported_by,
        "document": metadata, "versions": version_rows, "signatures": signature_rows,
        "audit_trail": [{
            "seq": e.seq, "occurred_at": _iso(e.occurred_at), "actor_id": e.actor_id,
            "actor_name": e.actor_name, "type": e.type, "stream_type": e.stream_type,
            "stream_id": e.stream_id, "data": json.loads(e.payload), "reason": e.reason,
            "client_addr": e.client_addr, "hash": e.hash} for e in events],
    }
    files["record.json"] = json.dumps(record, indent=2, ensure_ascii=False,
                                      sort_keys=True).encode("utf-8")
    files["record.pdf"] = render_record_pdf(metadata, version_rows, signature_rows,
                                            [describe_event(e) for e in events],
                                            generated_at=now, generated_by=exported_by)
    sums = "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n"
                   for name, data in sorted(files.items()))
    files["SHA256SUMS"] = sums.encode("ascii")

    buf = io.BytesIO()
    stamp = now.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, files[name])
    filename = (f"record-{_safe(study.protocol_number)}-{doc.id}-"
                f"{now.astimezone(UTC):%Y%m%dT%H%M%SZ}.zip")
    return RecordCopy(filename=filename, data=buf.getvalue())


def render_record_pdf(metadata: dict[str, Any], versions: Sequence[dict[str, Any]],
                      signatures: Sequence[dict[str, Any]], events: Sequence[EventView], *,
                      generated_at: datetime, generated_by: str) -> bytes:
    """The human-readable copy: metadata, versions, signatures and audit trail."""
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    styles = getSampleStyleSheet()
    small = styles["BodyText"].clone("record-small", fontSize=7.5, leading=9)

    def p(value: object) -> Paragraph:
        return Paragraph(escape("" if value is None else str(value)), small)

    def table(rows: list[list[Any]], widths: list[float]) -> Table:
        t = Table(rows, repeatRows=1, colWidths=[w * mm for w in widths])
        t.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8ecf2")),
            ("VALIGN", (0, 0), (-1, -1), "TOP")]))
        return t

    title = f"Record copy: {metadata['title']}"
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=12 * mm,
                            rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
                            title=title, author="eTMF", invariant=1)
    story: list[Any] = [
        Paragraph(escape(title), styles["Title"]),
        p(f"Study {metadata['study']}, document {metadata['id']}. Copy made "
          f"{_utc(generated_at)} by {generated_by}. All times are UTC. The electronic form "
          "of this copy is record.json; each version's exact bytes are in versions/."),
        Spacer(1, 4 * mm), Paragraph("Metadata", styles["Heading2"])]
    labels = [("Artifact", f"{metadata['artifact_number']} {metadata['artifact_name']}"),
              ("Sub-artifact", metadata["sub_artifact"]), ("Level", metadata["level"]),
              ("Country", metadata["country"]), ("Site", metadata["site"]),
              ("Title", metadata["title"]), ("Person", metadata["person"]),
              ("Language", metadata["language"]),
              ("Document date", metadata["document_date"]),
              ("Expiry date", metadata["expiry_date"]), ("Status", metadata["status_label"]),
              ("Filed at", metadata["filed_at"]), ("Approved at", metadata["approved_at"])]
    story.append(table([[p("Field"), p("Value")]]
                       + [[p(k), p(v if v is not None else "—")] for k, v in labels],
                       [45, 200]))
    story += [Spacer(1, 4 * mm), Paragraph("Versions", styles["Heading2"])]
    story.append(table(
        [[p(h) for h in ("#", "Version", "Status", "File", "Size (bytes)", "SHA-256",
                         "Uploaded (UTC)", "By", "Signed from")]]
        + [[p(v["number"]), p(v["label"]), p(v["status_label"]), p(v["filename"]),
            p(v["size"]), p(f"{v['sha256'][:32]} {v['sha256'][32:]}"), p(v["created_at"]), p(v["created_by"]),
            p(v["signed_from_version"] or "")] for v in versions],
        [10, 16, 22, 45, 20, 60, 40, 30, 20]))
    story += [Spacer(1, 4 * mm), Paragraph("Signatures", styles["Heading2"])]
    if signatures:
        rows = [[p(h) for h in ("Version", "Signer", "Meaning", "Signed (UTC)", "Level",
                                "Result")]]
        for s in signatures:
            for r in s["signatures"]:
                rows.append([p(s["label"]), p(r["signer_name"]), p(r["meaning"]),
                             p(r["signing_time"]), p(r["level"]),
                             p(f"{r['status']}: {r['summary']}")])
        story.append(table(rows, [16, 40, 40, 40, 25, 102]))
    else:
        story.append(p("No version of this record carries an electronic signature."))
    story += [Spacer(1, 4 * mm), Paragraph("Audit trail", styles["Heading2"])]
    rows = [[p(h) for h in ("#", "Time (UTC)", "Who", "What", "Object",
                            "Changes (old → new)", "Reason")]]
    for v in events:
        rows.append([p(v.seq), p(v.when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")),
                     p(v.actor), p(v.action), p(v.object),
                     p("; ".join(f"{f}: {o} → {n}" for f, o, n in v.changes)), p(v.reason)])
    story.append(table(rows, [12, 32, 38, 38, 38, 86, 28]))
    doc.build(story)
    return buf.getvalue()
