"""EMS export: a study (or a selection of zones and sites) as a zip streamed in bounded memory.

Layout (as the EMS example and exporters in the field)::

    exchange.xml
    ZZ/ZZ.SS/ZZ.SS.AA.Artifact Name/<object id>_v<version>_<file name>

One ``OBJECT`` per document version (same ``OBJECTID`` for every version of a document), its
state Current / Superseded / Obsolete, the ``FILE`` with ``INTEGRITY`` (``SHA256-<hex>``), the
signatures validated in the file and the audit records of that version; what EMS has no
element for goes into ``METADATA`` elements named ``ETMF_*``.

Memory stays flat whatever the study size: files are copied from blob storage in chunks into a
zip written to a non-seekable stream, and the manifest is built one object at a time into a
temporary file (each object validated against the XSD inside a BATCH shell, which is exactly
what validating the whole manifest checks) and copied into the zip at the end.
"""

from __future__ import annotations

import hashlib
import io
import json
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from lxml import etree
from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.models import Event
from etmf.audit.views import describe_event
from etmf.documents.lifecycle import PLACEHOLDER, SIGNPOST, VISIBLE_WITHOUT_DRAFTS, State
from etmf.documents.models import Document, DocumentVersion
from etmf.errors import ValidationError
from etmf.exchange import ems
from etmf.reference_model.model import load_reference_model
from etmf.studies.models import Country, Site, Study

CHUNK = 1024 * 1024
BATCH = 200
Progress = Callable[[int, int, str], None]

_STATE = {State.DRAFT.value: "Current", State.IN_QC.value: "Current",
          State.APPROVED.value: "Current", State.SUPERSEDED.value: "Superseded",
          State.OBSOLETE.value: "Obsolete"}
_ENTRY_TYPE = {"document.filed": "New", "document.version_added": "New",
               "document.imported": "New", "document.metadata_changed": "Change",
               "document.transitioned": "Change"}


@dataclass(frozen=True)
class Selection:
    """What to export: every zone and site (None), or only these."""

    zones: frozenset[str] | None = None
    site_ids: frozenset[int] | None = None

    def describe(self) -> str:
        parts = []
        if self.zones:
            parts.append("zones " + ", ".join(sorted(self.zones)))
        if self.site_ids:
            parts.append(f"{len(self.site_ids)} site(s)")
        return "; ".join(parts) or "whole study"


@dataclass
class ExportSummary:
    documents: int = 0
    versions: int = 0
    bytes: int = 0
    skipped_records: int = 0  # placeholders and signposts: no file to send
    manifest_sha256: str = ""


def require_export(access: Access, study_id: int) -> None:
    access.require(Permission.EXPORT_TMF, study_id)


def source_id(session: Session, study_id: int) -> str:
    """A stable id of this installation's copy of the study: from its creation event hash."""
    first = session.scalar(select(Event.hash).where(
        Event.stream_type == "study", Event.stream_id == str(study_id)).order_by(Event.seq)
        .limit(1))
    return "etmf-" + (first or "0" * 16)[:16]


def _documents(session: Session, study_id: int, selection: Selection,
               access: Access | None) -> Iterator[list[Document]]:
    q = select(Document).where(Document.study_id == study_id,
                               Document.status.not_in((PLACEHOLDER, SIGNPOST)))
    if selection.zones:
        q = q.where(Document.zone.in_(sorted(selection.zones)))
    if selection.site_ids:
        q = q.where(Document.site_id.in_(sorted(selection.site_ids)))
    if access is not None:
        scope = access.zone_scope(study_id)
        if scope is not None:
            q = q.where(Document.zone.in_(sorted(scope)))
        sites = access.site_scope(study_id)
        if sites is not None:
            q = q.where((Document.site_id.is_(None)) | (Document.site_id.in_(sorted(sites))))
        if not access.can(Permission.VIEW_DRAFTS, study_id):
            q = q.where(Document.status.in_(VISIBLE_WITHOUT_DRAFTS))
    last = 0
    while True:
        rows = session.scalars(q.where(Document.id > last).order_by(Document.id)
                               .limit(BATCH)).all()
        if not rows:
            return
        yield list(rows)
        last = rows[-1].id


def count_documents(session: Session, study_id: int, selection: Selection,
                    access: Access | None = None) -> int:
    return sum(len(b) for b in _documents(session, study_id, selection, access))


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream whose bytes are taken out as they come."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._pos = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._chunks.append(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def drain(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def _sub(parent: etree._Element, name: str, value: object | None) -> None:
    if value is None:
        return
    etree.SubElement(parent, ems.Q + name).text = str(value)


def _meta(parent: etree._Element, name: str, value: object | None) -> None:
    if value is None or value == "":
        return
    el = etree.SubElement(parent, ems.Q + "METADATA", NAME=name)
    el.text = str(value)


def _safe_segment(text: str) -> str:
    return "".join(c if c.isalnum() or c in " .-_()," else "_" for c in text).strip()[:120]


def content_path(model: Any, doc: Document, version: DocumentVersion, object_id: str) -> str:
    artifact = model.artifact(doc.artifact_id)
    name = _safe_segment(f"{object_id}_v{version.label}_{version.filename}")
    return (f"{artifact.zone_number}/{artifact.section_number}/"
            f"{artifact.number}.{_safe_segment(artifact.name)}/{name}")


def _signatures(session: Session, version_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    from etmf.signing.models import SignatureValidation

    found: dict[int, list[dict[str, Any]]] = {}
    if not version_ids:
        return found
    for row in session.scalars(select(SignatureValidation).where(
            SignatureValidation.version_id.in_(version_ids))
            .order_by(SignatureValidation.id)):
        found[row.version_id] = json.loads(row.report)  # the latest wins
    return found


def _audit_records(events: list[Event], version: DocumentVersion, current_id: int | None
                   ) -> list[tuple[Event, str]]:
    out = []
    for e in events:
        data = json.loads(e.payload)
        vid = (data.get("version") or {}).get("id") if isinstance(data.get("version"),
                                                                   dict) else None
        if e.type == "document.transitioned":
            vid = data.get("version_id")
        if e.type == "document.imported":
            ids = [v["id"] for v in data.get("versions", [])]
            vid = version.id if version.id in ids else None
        if vid == version.id or (vid is None and version.id == current_id):
            view = describe_event(e)
            changes = "; ".join(f"{f}: {o} → {n}" for f, o, n in view.changes)
            text = f"{view.action}" + (f" ({changes})" if changes else "")
            if e.reason:
                text += f"; reason: {e.reason}"
            out.append((e, f"{text}; event hash {e.hash}"[:4000]))
    return out


def build_object(model: Any, doc: Document, version: DocumentVersion, *, study: Study,
                 countries: dict[int, Country], sites: dict[int, Site],
                 events: list[Event], signatures: list[dict[str, Any]],
                 path: str, object_id: str, by_id: dict[int, DocumentVersion]
                 ) -> etree._Element:
    obj = etree.Element(ems.Q + "OBJECT")
    artifact = model.artifact(doc.artifact_id)
    country = countries.get(doc.country_id) if doc.country_id else None
    site = sites.get(doc.site_id) if doc.site_id else None
    _sub(obj, "OBJECTID", object_id)
    _sub(obj, "OBJECTLEVEL", doc.level.capitalize())
    if country is not None and country.code in ems.ALPHA3:
        _sub(obj, "COUNTRYID", ems.ALPHA3[country.code])
    if site is not None:
        _sub(obj, "SITESYSTEMID", str(site.id))
        _sub(obj, "SITEID", site.number)
    _sub(obj, "UNIQUEID", int(artifact.unique_id))
    _sub(obj, "ARTIFACTNUMBER", artifact.number)
    if doc.person:
        _sub(obj, "PERSONNAME", doc.person)
    if site is not None:
        _sub(obj, "ORGANIZATIONNAME", site.institution)
    if doc.language and len(doc.language) == 2 and doc.language.islower():
        _sub(obj, "OBJECTLANGUAGE", doc.language)
    _sub(obj, "OBJECTVERSION", version.label)
    _sub(obj, "OBJECTVERSIONSTATE", _STATE.get(version.status, "Current"))
    _sub(obj, "OBJECTTITLE", doc.title)
    if doc.sub_artifact:
        _sub(obj, "SUBARTIFACT", doc.sub_artifact)
    _sub(obj, "OBJECTCOPY", "No")
    _sub(obj, "OBJECTEXPIRYDATE", ems.ems_date(doc.expiry_date))
    _sub(obj, "ARTIFACTDATE", ems.ems_date(doc.document_date))
    if doc.document_date is not None:
        _sub(obj, "DATEDESCRIPTION", artifact.dating_convention or None)
    f = etree.SubElement(obj, ems.Q + "FILE")
    _sub(f, "INTEGRITY", ems.integrity(version.sha256))
    _sub(f, "FILENAME", version.filename)
    _sub(f, "CONTENTURL", path)
    _sub(f, "FILEDESCRIPTION", version.note or None)
    for s in signatures:
        if not s.get("signing_time"):
            continue
        sig = etree.SubElement(f, ems.Q + "SIGNATURE")
        _sub(sig, "SIGNATUREMETHODOLOGY", "Digital")
        _sub(sig, "USEROID", s.get("certificate_serial") or s.get("signer_name"))
        _sub(sig, "SIGNATURENAME", s.get("signer_name") or "unknown")
        _sub(sig, "SIGNATUREDATETIME", s["signing_time"])
        _sub(sig, "SIGNATUREREASON", s.get("meaning") or s.get("summary") or "Signed")
    for event, text in events:
        rec = etree.SubElement(f, ems.Q + "AUDITRECORD")
        _sub(rec, "AUDITID", event.seq)
        _sub(rec, "DATETIMESTAMP", ems.ems_datetime(event.occurred_at))
        _sub(rec, "USERREF", event.actor_name or "system")
        _sub(rec, "AUDITENTRYTYPE", _ENTRY_TYPE.get(event.type, "Other"))
        _sub(rec, "AUDITEVENT", text)
    _meta(obj, "ETMF_DOCUMENT_ID", doc.id)
    _meta(obj, "ETMF_DOCUMENT_STATUS", doc.status)
    _meta(obj, "ETMF_VERSION_NUMBER", version.number)
    _meta(obj, "ETMF_VERSION_STATUS", version.status)
    _meta(obj, "ETMF_LEVEL", doc.level)
    if country is not None:
        _meta(obj, "ETMF_COUNTRY", country.code)
        _meta(obj, "ETMF_COUNTRY_NAME", country.name)
    if site is not None:
        _meta(obj, "ETMF_SITE_INSTITUTION", site.institution)
    _meta(obj, "ETMF_LANGUAGE", doc.language)
    _meta(obj, "ETMF_DOCUMENT_DATE", doc.document_date.isoformat() if doc.document_date
          else None)
    _meta(obj, "ETMF_EXPIRY_DATE", doc.expiry_date.isoformat() if doc.expiry_date else None)
    _meta(obj, "ETMF_MIME", version.mime)
    _meta(obj, "ETMF_SIZE", version.size)
    _meta(obj, "ETMF_PAGE_COUNT", version.page_count)
    _meta(obj, "ETMF_UPLOADED_AT", ems.ems_datetime(version.created_at))
    _meta(obj, "ETMF_UPLOADED_BY", version.created_by_name)
    if doc.approved_at is not None:
        _meta(obj, "ETMF_APPROVED_AT", doc.approved_at.isoformat())  # full precision
    if version.signed_from_version_id and version.signed_from_version_id in by_id:
        _meta(obj, "ETMF_SIGNED_FROM_VERSION", by_id[version.signed_from_version_id].number)
    if version.id == doc.current_version_id:
        _meta(obj, "ETMF_CURRENT", "yes")
    _meta(obj, "ETMF_STUDY_TITLE", study.title)
    return obj


class _ManifestWriter:
    """Objects validated one by one inside a BATCH shell, serialised into a spool file."""

    def __init__(self, attrs: dict[str, str]) -> None:
        self.attrs = attrs
        self.shell = etree.Element(ems.Q + "BATCH", nsmap={None: ems.NS}, **attrs)
        self.spool: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self.count = 0

    def add(self, obj: etree._Element) -> None:
        self.shell.append(obj)
        try:
            errors = ems.schema_errors(self.shell)
            if errors:
                object_id = ems.text_of(obj, "OBJECTID")
                raise ValidationError(f"The export of {object_id} is not valid EMS: "
                                      + "; ".join(errors))
            self.spool.write(b"  " + etree.tostring(obj, encoding="utf-8").replace(
                b' xmlns="' + ems.NS.encode() + b'"', b"") + b"\n")
            self.count += 1
        finally:
            self.shell.remove(obj)

    def chunks(self) -> Iterator[bytes]:
        attrs = "".join(f' {k}="{_xml_attr(v)}"' for k, v in self.attrs.items())
        yield (f'<?xml version="1.0" encoding="UTF-8"?>\n<BATCH xmlns="{ems.NS}"{attrs}>\n'
               ).encode()
        self.spool.seek(0)
        while chunk := self.spool.read(CHUNK):
            yield chunk
        yield b"</BATCH>\n"

    def close(self) -> None:
        self.spool.close()


def _xml_attr(value: str) -> str:
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
            .replace(">", "&gt;"))


def iter_package(session: Session, blobs: Any, study_id: int, *, now: datetime,
                 selection: Selection = Selection(), access: Access | None = None,
                 progress: Progress | None = None, summary: ExportSummary | None = None,
                 extra_files: Iterable[tuple[str, bytes]] = ()) -> Iterator[bytes]:
    """Yield the bytes of the EMS zip. ``summary`` (if given) is filled in as it goes."""
    study = session.get(Study, study_id)
    if study is None:
        raise ValidationError("There is no such study.")
    summary = summary if summary is not None else ExportSummary()
    total = count_documents(session, study_id, selection, access) if progress else 0
    model = load_reference_model()
    countries = {c.id: c for c in session.scalars(select(Country).where(
        Country.study_id == study_id))}
    sites = {s.id: s for s in session.scalars(select(Site).where(Site.study_id == study_id))}
    src = source_id(session, study_id)
    manifest = _ManifestWriter({
        "STUDYSYSTEMID": str(study.id), "STUDYID": study.protocol_number,
        "TRANSFERSOURCEID": src, "TRANSFERID": f"{study.protocol_number}-{now:%Y%m%dT%H%M%SZ}",
        "SPECIFICATIONID": ems.SPECIFICATION_ID, "TMFRMVERSION": model.version})
    sink = _Sink()
    try:
        with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED) as zf:
            for batch in _documents(session, study_id, selection, access):
                ids = [d.id for d in batch]
                versions = session.scalars(select(DocumentVersion).where(
                    DocumentVersion.document_id.in_(ids)).order_by(
                    DocumentVersion.document_id, DocumentVersion.number)).all()
                events: dict[int, list[Event]] = {}
                for e in session.scalars(select(Event).where(
                        Event.stream_type == "document",
                        Event.stream_id.in_([str(i) for i in ids])).order_by(Event.seq)):
                    events.setdefault(int(e.stream_id), []).append(e)
                sigs = _signatures(session, [v.id for v in versions])
                by_doc: dict[int, list[DocumentVersion]] = {}
                for v in versions:
                    by_doc.setdefault(v.document_id, []).append(v)
                for doc in batch:
                    object_id = f"{study.protocol_number}-D{doc.id}"
                    doc_versions = by_doc.get(doc.id, [])
                    by_id = {v.id: v for v in doc_versions}
                    for version in doc_versions:
                        path = content_path(model, doc, version, object_id)
                        info = zipfile.ZipInfo(path, date_time=_zip_time(version.created_at))
                        info.compress_type = zipfile.ZIP_STORED
                        with zf.open(info, "w", force_zip64=version.size > 2**31 - 1) as out, \
                                blobs.open(version.sha256) as reader:
                            while chunk := reader.read(CHUNK):
                                out.write(chunk)
                                yield sink.drain()
                        summary.bytes += version.size
                        summary.versions += 1
                        manifest.add(build_object(
                            model, doc, version, study=study, countries=countries,
                            sites=sites, events=_audit_records(
                                events.get(doc.id, []), version, doc.current_version_id),
                            signatures=sigs.get(version.id, []), path=path,
                            object_id=object_id, by_id=by_id))
                    summary.documents += 1
                    if progress:
                        progress(summary.documents, total, doc.title)
            if manifest.count == 0:
                raise ValidationError("Nothing to export: the selection holds no document "
                                      "with a file.")
            digest = hashlib.sha256()
            info = zipfile.ZipInfo(ems.MANIFEST_NAME, date_time=_zip_time(now))
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=True) as out:
                for chunk in manifest.chunks():
                    digest.update(chunk)
                    out.write(chunk)
                    yield sink.drain()
            summary.manifest_sha256 = digest.hexdigest()
            for name, data in extra_files:
                zf.writestr(zipfile.ZipInfo(name, date_time=_zip_time(now)), data,
                            compress_type=zipfile.ZIP_DEFLATED)
                yield sink.drain()
        yield sink.drain()
    finally:
        manifest.close()


def _zip_time(at: datetime) -> tuple[int, int, int, int, int, int]:
    at = at if at.year >= 1980 else at.replace(year=1980)
    return (at.year, at.month, at.day, at.hour, at.minute, at.second)


def write_package(session: Session, blobs: Any, study_id: int, out: IO[bytes], *,
                  now: datetime, selection: Selection = Selection(),
                  access: Access | None = None, progress: Progress | None = None,
                  extra_files: Iterable[tuple[str, bytes]] = ()) -> ExportSummary:
    summary = ExportSummary()
    for chunk in iter_package(session, blobs, study_id, now=now, selection=selection,
                              access=access, progress=progress, summary=summary,
                              extra_files=extra_files):
        if chunk:
            out.write(chunk)
    return summary
