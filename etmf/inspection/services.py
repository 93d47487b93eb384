"""Inspection requests: an inspector asks for a document or an explanation; the study team
answers. Both are events on the request's stream, so the study's audit trail shows them.

Requests are allowed on a locked (archived) study: they do not change the TMF.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.documents.models import Document
from etmf.errors import InvalidTransition, NotFound, ValidationError
from etmf.inspection.models import InspectionRequest
from etmf.studies.models import Study

KINDS = {"document": "A document", "explanation": "An explanation"}


def _clean(value: str | None, limit: int, what: str) -> str:
    text = " ".join("".join(c for c in (value or "") if c == "\n" or ord(c) >= 32).split(" "))
    text = text.strip()
    if not text:
        raise ValidationError(f"The {what} is required.")
    if len(text) > limit:
        raise ValidationError(f"The {what} is {len(text)} characters long; at most {limit} "
                              "are allowed.")
    return text


@dataclass(frozen=True)
class NewRequest:
    study_id: int
    kind: str
    subject: str
    text: str
    document_id: int | None = None


def raise_request(uow: UnitOfWork, access: Access, cmd: NewRequest) -> int:
    """An inspector asks the study team for a document or an explanation."""
    access.require(Permission.RAISE_INSPECTION_REQUEST, cmd.study_id)
    if uow.session.get(Study, cmd.study_id) is None:
        raise NotFound("There is no such study.")
    if cmd.kind not in KINDS:
        raise ValidationError(f"{cmd.kind!r} is not a kind of request; ask for a document or "
                              "an explanation.")
    if cmd.document_id is not None:
        doc = uow.session.get(Document, cmd.document_id)
        if doc is None or doc.study_id != cmd.study_id or not access.can(
                Permission.VIEW_APPROVED, doc.study_id, doc.site_id, zone=doc.zone):
            raise NotFound("There is no such document, or you have no access to it.")
    request_id = uow.allocate_id(InspectionRequest)
    uow.emit("inspection_request", request_id, "inspection.request_raised", {
        "study_id": cmd.study_id, "document_id": cmd.document_id, "kind": cmd.kind,
        "subject": _clean(cmd.subject, 300, "subject"),
        "text": _clean(cmd.text, 4000, "request text")},
        expected_version=0, study_id=cmd.study_id)
    return request_id


def answer_request(uow: UnitOfWork, access: Access, request_id: int, answer: str, *,
                   expected_version: int, document_id: int | None = None) -> None:
    """The study team answers (optionally pointing to the document provided)."""
    req = uow.session.get(InspectionRequest, request_id)
    if req is None:
        raise NotFound("There is no such inspection request.")
    access.require(Permission.ANSWER_INSPECTION_REQUEST, req.study_id)
    if req.status == "answered":
        raise InvalidTransition("This request has already been answered.")
    if document_id is not None:
        doc = uow.session.get(Document, document_id)
        if doc is None or doc.study_id != req.study_id:
            raise ValidationError("The document named in the answer is not in this study.")
    uow.emit("inspection_request", request_id, "inspection.request_answered", {
        "answer": _clean(answer, 4000, "answer"), "document_id": document_id},
        expected_version=expected_version, study_id=req.study_id)


def requests_of(session: Session, study_id: int) -> list[InspectionRequest]:
    return list(session.scalars(select(InspectionRequest).where(
        InspectionRequest.study_id == study_id).order_by(InspectionRequest.id.desc())))


def open_count(session: Session, study_id: int) -> int:
    return int(session.scalar(select(func.count()).select_from(InspectionRequest).where(
        InspectionRequest.study_id == study_id, InspectionRequest.status == "open")) or 0)


def completeness(session: Session, study_id: int, today: date) -> str | None:
    """The study's TMF completeness in words (from the tracking area's expected document
    list), or None when the study has no expected document list yet.

    Read from the dashboard's caches (``etmf.tracking.summary``; call ``ensure_fresh``
    first), which hold the same sums as the expected documents' states: 60,000 entries at
    500 sites are not worked out again for a line of text."""
    from etmf.tracking.summary import GROUPINGS, summary

    study = summary(session, study_id, today,
                    dict.fromkeys(GROUPINGS, lambda _key: ""))["study"]
    if not study:
        return None
    c = study[0]
    return (f"{c.percent}% complete: {c.approved} of {c.expected} expected documents "
            f"approved, {c.missing} missing, {c.overdue} overdue")
