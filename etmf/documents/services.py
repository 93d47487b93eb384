"""Document commands: file, add a version, move through the lifecycle, edit metadata.

The blob is written to storage *before* these run (content-addressed, write-once), so a
failure here leaves at most an unreferenced blob that `etmf storage reconcile` reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.documents.lifecycle import (
    PLACEHOLDER,
    QC_CATEGORIES,
    REASON_REQUIRED,
    SIGNPOST,
    Action,
    State,
    is_final,
    next_state,
)
from etmf.documents.models import Document, DocumentVersion, QcIssue
from etmf.errors import InvalidTransition, NotFound, ValidationError
from etmf.reference_model.model import UnknownArtifact, load_reference_model
from etmf.studies.models import Country, Site, Study

LEVELS = ("trial", "country", "site")
EARLIEST_DOCUMENT_DATE = date(1950, 1, 1)


@dataclass(frozen=True)
class StoredFile:
    """A blob already written to storage, with what intake learned about it."""

    sha256: str
    size: int
    mime: str
    filename: str
    page_count: int | None = None


@dataclass(frozen=True)
class FileDocument:
    study_id: int
    artifact: str  # unique id or number
    title: str
    file: StoredFile
    level: str = "trial"
    country_id: int | None = None
    site_id: int | None = None
    sub_artifact: str | None = None
    person: str | None = None
    language: str | None = None
    document_date: date | None = None
    expiry_date: date | None = None
    version_label: str = "1.0"


def _study_for_change(uow: UnitOfWork, study_id: int) -> Study:
    study = uow.session.get(Study, study_id)
    if study is None:
        raise NotFound("There is no such study.")
    if study.locked_at is not None:
        raise InvalidTransition(
            f"Study {study.protocol_number} is locked (archived): nothing can be changed "
            "until an administrator unlocks it."
        )
    return study


def _resolve_artifact(key: str):  # type: ignore[no-untyped-def]
    model = load_reference_model()
    key = key.strip()
    try:
        return model.artifact(key)
    except UnknownArtifact:
        try:
            return model.artifact_by_number(key)
        except UnknownArtifact:
            raise ValidationError(
                f"{key!r} is not an artifact of the TMF Reference Model {model.version}."
            ) from None


def _check_dates(uow: UnitOfWork, document_date: date | None, expiry: date | None) -> None:
    today = uow.now.date()
    if document_date is not None:
        if document_date > today:
            raise ValidationError(
                f"The document date {document_date.isoformat()} is in the future."
            )
        if document_date < EARLIEST_DOCUMENT_DATE:
            raise ValidationError(
                f"The document date {document_date.isoformat()} is implausibly early."
            )
    if expiry is not None and document_date is not None and expiry < document_date:
        raise ValidationError("The expiry date is before the document date.")


@dataclass(frozen=True)
class NewRecord:
    """A placeholder (an expected document, no file yet) or a signpost (REC-7)."""

    study_id: int
    artifact: str
    title: str
    level: str = "trial"
    country_id: int | None = None
    site_id: int | None = None
    sub_artifact: str | None = None
    person: str | None = None
    language: str | None = None
    document_date: date | None = None
    expiry_date: date | None = None
    #: For a signpost: the system holding the record, and where in it.
    system: str | None = None
    location: str | None = None


def _filing_payload(uow: UnitOfWork, access: Access, cmd: FileDocument | NewRecord
                    ) -> dict[str, object]:
    """Check where a record is filed and return the common part of its event payload."""
    _study_for_change(uow, cmd.study_id)
    access.require(Permission.FILE, cmd.study_id, cmd.site_id)
    artifact = _resolve_artifact(cmd.artifact)
    title = _clean(cmd.title, 500, "title")
    if not title:
        raise ValidationError("A title is required.")
    if cmd.level not in LEVELS:
        raise ValidationError(f"Level {cmd.level!r} is not one of {', '.join(LEVELS)}.")
    country_id, site_id = cmd.country_id, cmd.site_id
    if cmd.level == "site":
        site = uow.session.get(Site, site_id) if site_id else None
        if site is None or site.study_id != cmd.study_id:
            raise ValidationError("A site-level document needs a site of this study.")
        country_id = site.country_id
    elif cmd.level == "country":
        country = uow.session.get(Country, country_id) if country_id else None
        if country is None or country.study_id != cmd.study_id:
            raise ValidationError("A country-level document needs a country of this study.")
        site_id = None
    else:
        country_id = site_id = None
    _check_dates(uow, cmd.document_date, cmd.expiry_date)
    return {
        "study_id": cmd.study_id, "artifact_id": artifact.unique_id,
        "artifact_number": artifact.number, "zone": artifact.zone_number,
        "section": artifact.section_number,
        "sub_artifact": _clean(cmd.sub_artifact, 200, "sub-artifact") or None,
        "level": cmd.level, "country_id": country_id, "site_id": site_id,
        "title": title, "person": _clean(cmd.person, 200, "person") or None,
        "language": _clean(cmd.language, 20, "language") or None,
        "document_date": cmd.document_date.isoformat() if cmd.document_date else None,
        "expiry_date": cmd.expiry_date.isoformat() if cmd.expiry_date else None,
    }


def _clean(value: str | None, limit: int, what: str) -> str:
    """Stripped text without control characters, refused (not cut) beyond ``limit``."""
    if value is None:
        return ""
    text = "".join(c for c in str(value) if c in "\t" or (ord(c) >= 32 and ord(c) != 127))
    text = " ".join(text.split())
    if len(text) > limit:
        raise ValidationError(f"The {what} is {len(text)} characters long; at most {limit} "
                              "are allowed.")
    return text


def file_document(uow: UnitOfWork, access: Access, cmd: FileDocument) -> int:
    """File a new document with its first version, as a draft."""
    payload = _filing_payload(uow, access, cmd)
    version_id = uow.allocate_id(DocumentVersion)
    version = _version_payload(version_id, 1, cmd.version_label, cmd.file)
    from etmf.tracking.services import fill_placeholder  # an EDL placeholder waiting for it

    if (filled := fill_placeholder(uow, access, payload, version)) is not None:
        return filled
    doc_id = uow.allocate_id(Document)
    payload["version"] = version
    uow.emit("document", doc_id, "document.filed", payload,
             expected_version=0, study_id=cmd.study_id)
    return doc_id


def create_placeholder(uow: UnitOfWork, access: Access, cmd: NewRecord) -> int:
    """Record that a document is expected; its file is uploaded later as version 1."""
    payload = _filing_payload(uow, access, cmd)
    doc_id = uow.allocate_id(Document)
    uow.emit("document", doc_id, "document.placeholder_created", payload,
             expected_version=0, study_id=cmd.study_id)
    return doc_id


def create_signpost(uow: UnitOfWork, access: Access, cmd: NewRecord) -> int:
    """Record that an essential record is held in another system, and where (REC-7)."""
    payload = _filing_payload(uow, access, cmd)
    system = _clean(cmd.system, 200, "system name")
    location = _clean(cmd.location, 500, "location")
    if not system or not location:
        raise ValidationError("A signpost needs the name of the system holding the record "
                              "and where in it the record is.")
    payload.update({"system": system, "location": location})
    doc_id = uow.allocate_id(Document)
    uow.emit("document", doc_id, "document.signpost_created", payload,
             expected_version=0, study_id=cmd.study_id)
    return doc_id


def duplicates_in_study(session, study_id: int, sha256: str) -> list[Document]:  # type: ignore[no-untyped-def]
    """Documents of the study that already hold a version with exactly these bytes."""
    return list(session.scalars(
        select(Document).join(DocumentVersion, DocumentVersion.document_id == Document.id)
        .where(Document.study_id == study_id, DocumentVersion.sha256 == sha256)
        .distinct().order_by(Document.id)))


def next_version_label(current: str | None, *, major: bool) -> str:
    """The label after ``current``: "1.0" → "2.0" (major) or "1.1" (minor)."""
    parts = (current or "").split(".")
    try:
        high = int(parts[0])
        low = int(parts[1]) if len(parts) > 1 else 0
    except ValueError:
        return "2.0" if major else "1.1"
    return f"{high + 1}.0" if major else f"{high}.{low + 1}"


def _version_payload(
    version_id: int, number: int, label: str, f: StoredFile, note: str | None = None,
    signed_from: int | None = None,
) -> dict[str, object]:
    return {
        "id": version_id, "number": number,
        "label": _clean(label, 20, "version label") or str(number),
        "status": State.DRAFT.value, "sha256": f.sha256, "size": f.size, "mime": f.mime,
        "filename": f.filename, "page_count": f.page_count, "note": note,
        "signed_from_version_id": signed_from,
    }


def get_document(uow_or_session, document_id: int) -> Document:  # type: ignore[no-untyped-def]
    session = getattr(uow_or_session, "session", uow_or_session)
    doc = session.get(Document, document_id)
    if doc is None:
        raise NotFound("There is no such document.")
    return doc


def add_version(
    uow: UnitOfWork, access: Access, document_id: int, file: StoredFile, *,
    label: str, expected_version: int, note: str | None = None,
) -> int:
    """New content is always a new version; it supersedes the approved one on approval."""
    doc = get_document(uow, document_id)
    access.require(Permission.FILE, doc.study_id, doc.site_id)
    _study_for_change(uow, doc.study_id)
    if doc.status == SIGNPOST:
        raise InvalidTransition("A signpost points to a record held in another system; "
                                "it has no files of its own.")
    if doc.status in (State.IN_QC, State.OBSOLETE):
        raise InvalidTransition(
            f"A new version cannot be added while the document is {State(doc.status).label}."
        )
    number = 1 + (uow.session.scalar(
        select(DocumentVersion.number).where(DocumentVersion.document_id == document_id)
        .order_by(DocumentVersion.number.desc()).limit(1)) or 0)
    version_id = uow.allocate_id(DocumentVersion)
    uow.emit(
        "document", document_id, "document.version_added",
        {"version": _version_payload(version_id, number, label, file, note)},
        expected_version=expected_version, study_id=doc.study_id,
    )
    return version_id


_ACTION_PERMISSION = {
    Action.SUBMIT_QC: Permission.FILE,
    Action.APPROVE: Permission.QC,
    Action.REJECT: Permission.QC,
    Action.WITHDRAW: Permission.APPROVE,
}


@dataclass(frozen=True)
class NewQcIssue:
    category: str
    comment: str


def open_qc_issues(session, document_id: int) -> list[QcIssue]:  # type: ignore[no-untyped-def]
    return list(session.scalars(select(QcIssue).where(
        QcIssue.document_id == document_id, QcIssue.answered_at.is_(None)
    ).order_by(QcIssue.id)))


def transition(
    uow: UnitOfWork, access: Access, document_id: int, action: Action | str, *,
    expected_version: int, reason: str | None = None,
    issues: list[NewQcIssue] | None = None,
) -> State:
    """Move the current version through the lifecycle (enforced in order: OPS-1).

    Rejecting needs at least one QC issue (category and comment); a document with an
    unanswered issue cannot be sent to QC again. A placeholder or signpost can only be
    withdrawn (it is no longer expected / no longer held there).
    """
    try:
        action = Action(action)
    except ValueError:
        raise ValidationError(f"{action!r} is not a document action.") from None
    doc = get_document(uow, document_id)
    access.require(_ACTION_PERMISSION[action], doc.study_id, doc.site_id)
    _study_for_change(uow, doc.study_id)
    if doc.status in (PLACEHOLDER, SIGNPOST):
        if action is not Action.WITHDRAW:
            raise InvalidTransition("A placeholder or signpost has no file to review; "
                                    "upload its file first, or withdraw it.")
        uow.emit(
            "document", document_id, "document.transitioned",
            {"version_id": None, "action": action.value, "from": doc.status,
             "to": State.OBSOLETE.value, "superseded_version_id": None},
            expected_version=expected_version, study_id=doc.study_id, reason=reason,
            reason_required=True,
        )
        return State.OBSOLETE
    version = uow.session.get(DocumentVersion, doc.current_version_id)
    assert version is not None
    new_state = next_state(version.status, action)
    payload: dict[str, object] = {}
    if action is Action.REJECT:
        payload["qc_issues"] = _new_issues(uow, issues or [])
        if not (reason and reason.strip()):
            reason = "; ".join(f"{i['category']}: {i['comment']}"
                               for i in payload["qc_issues"])[:1000]  # type: ignore[union-attr]
    if action is Action.SUBMIT_QC and open_qc_issues(uow.session, document_id):
        raise InvalidTransition("Answer every open QC issue of this document before you "
                                "send it to QC again.")
    superseded = None
    if new_state is State.APPROVED:
        superseded = uow.session.scalar(
            select(DocumentVersion.id).where(
                DocumentVersion.document_id == document_id,
                DocumentVersion.status == State.APPROVED.value,
                DocumentVersion.id != version.id,
            )
        )
    uow.emit(
        "document", document_id, "document.transitioned",
        {"version_id": version.id, "action": action.value, "from": version.status,
         "to": new_state.value, "superseded_version_id": superseded, **payload},
        expected_version=expected_version, study_id=doc.study_id, reason=reason,
        reason_required=action in REASON_REQUIRED,
    )
    return new_state


def _new_issues(uow: UnitOfWork, issues: list[NewQcIssue]) -> list[dict[str, object]]:
    if not issues:
        raise ValidationError("Record at least one QC issue (a category and a comment) "
                              "so that the filer knows what to fix.")
    out = []
    for issue in issues:
        if issue.category not in QC_CATEGORIES:
            raise ValidationError(f"{issue.category!r} is not a QC issue category; use one "
                                  f"of: {', '.join(QC_CATEGORIES)}.")
        comment = _clean(issue.comment, 2000, "QC comment")
        if not comment:
            raise ValidationError("Every QC issue needs a comment saying what is wrong.")
        out.append({"id": uow.allocate_id(QcIssue), "category": issue.category,
                    "comment": comment})
    return out


def answer_qc_issue(uow: UnitOfWork, access: Access, issue_id: int, response: str, *,
                    expected_version: int) -> None:
    """The filer says what was done about a QC issue (required before resubmission)."""
    issue = uow.session.get(QcIssue, issue_id)
    if issue is None:
        raise NotFound("There is no such QC issue.")
    doc = get_document(uow, issue.document_id)
    access.require(Permission.FILE, doc.study_id, doc.site_id)
    _study_for_change(uow, doc.study_id)
    if issue.answered_at is not None:
        raise InvalidTransition("This QC issue has already been answered.")
    text = _clean(response, 2000, "answer")
    if not text:
        raise ValidationError("Say what was done about the QC issue.")
    uow.emit("document", doc.id, "document.qc_issue_answered",
             {"issue_id": issue.id, "response": text},
             expected_version=expected_version, study_id=doc.study_id)


_METADATA_LIMITS = {"title": 500, "person": 200, "language": 20, "sub_artifact": 200}


def change_metadata(
    uow: UnitOfWork, access: Access, document_id: int, changes: dict[str, object], *,
    expected_version: int, reason: str | None = None,
) -> None:
    """Edit metadata; old and new values go into the event. Final documents need a reason."""
    doc = get_document(uow, document_id)
    access.require(Permission.EDIT_METADATA, doc.study_id, doc.site_id)
    _study_for_change(uow, doc.study_id)
    diff: dict[str, list[object]] = {}
    for field, new in changes.items():
        if field not in _METADATA_LIMITS and field not in {"document_date", "expiry_date"}:
            raise ValidationError(f"{field!r} cannot be edited.")
        if field in _METADATA_LIMITS:
            new = _clean(new, _METADATA_LIMITS[field], field.replace("_", " ")) or None
        old = getattr(doc, field)
        old_s = old.isoformat() if isinstance(old, date) else old
        new_s = new.isoformat() if isinstance(new, date) else new
        if old_s != new_s:
            diff[field] = [old_s, new_s]
    if not diff:
        return
    if "title" in diff and not str(diff["title"][1] or "").strip():
        raise ValidationError("A title is required.")
    new_doc_date = changes.get("document_date", doc.document_date)
    new_expiry = changes.get("expiry_date", doc.expiry_date)
    _check_dates(uow, new_doc_date, new_expiry)  # type: ignore[arg-type]
    uow.emit(
        "document", document_id, "document.metadata_changed", {"changes": diff},
        expected_version=expected_version, study_id=doc.study_id, reason=reason,
        reason_required=is_final(doc.status),
    )
