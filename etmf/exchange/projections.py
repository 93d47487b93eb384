"""How exchange events change the read tables: imported documents and packages."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.orm import Session

from etmf.audit.store import PendingEvent, projection
from etmf.documents.models import Document, DocumentVersion
from etmf.exchange.models import ImportedAuditRecord, ImportedObject, ImportedPackage


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


@projection("document.imported")
def document_imported(session: Session, event: PendingEvent) -> None:
    d = event.data
    doc_id = int(event.stream_id)
    session.add(Document(
        id=doc_id, study_id=d["study_id"], artifact_id=d["artifact_id"],
        artifact_number=d["artifact_number"], zone=d["zone"], section=d["section"],
        sub_artifact=d.get("sub_artifact"), level=d["level"], country_id=d.get("country_id"),
        site_id=d.get("site_id"), title=d["title"], person=d.get("person"),
        language=d.get("language"), document_date=_date(d.get("document_date")),
        expiry_date=_date(d.get("expiry_date")), status=d["status"],
        current_version_id=d["current_version_id"], created_at=event.occurred_at,
        approved_at=datetime.fromisoformat(d["approved_at"]) if d.get("approved_at") else None,
        created_by_id=event.actor.id, version=event.stream_version))
    session.flush()
    for v in d["versions"]:
        session.add(DocumentVersion(
            id=v["id"], document_id=doc_id, number=v["number"], label=v["label"],
            status=v["status"], sha256=v["sha256"], size=v["size"], mime=v["mime"],
            filename=v["filename"], page_count=v.get("page_count"), note=v.get("note"),
            created_at=event.occurred_at, created_by_id=event.actor.id,
            created_by_name=event.actor.name,
            signed_from_version_id=v.get("signed_from_version_id")))
    src = d["source"]
    session.add(ImportedObject(id=src["object_row_id"], study_id=d["study_id"],
                               source_id=src["source_id"], object_id=src["object_id"],
                               document_id=doc_id, package_id=src["package_id"]))
    for h in d.get("imported_history", []):
        session.add(ImportedAuditRecord(
            id=h["id"], document_id=doc_id, version_label=h["version"][:40],
            source_id=src["source_id"], kind=h["kind"], record_id=h["record_id"][:200],
            occurred_at=h["at"][:40], user_ref=h["user"][:200], entry_type=h["type"][:40],
            text=h["text"]))
    session.flush()


@projection("exchange.package_imported")
def package_imported(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(ImportedPackage(
        id=int(event.stream_id), study_id=d["study_id"], package_sha256=d["package_sha256"],
        transfer_id=d["transfer_id"], source_id=d["source_id"],
        imported_at=event.occurred_at, imported_by_name=event.actor.name,
        documents=d["documents"], versions=d["versions"], skipped=d["skipped"]))
    session.flush()
