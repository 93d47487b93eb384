"""The inspector's view: a landing page per study, requests and answers, the PDF inline on the
document page. Every view an inspector opens is logged by the access guards."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_security import auth_required
from sqlalchemy import func, select

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.documents.models import Document, DocumentVersion
from etmf.errors import NotFound, ValidationError
from etmf.inspection import services as inspection
from etmf.inspection.models import InspectionRequest
from etmf.reference_model.model import load_reference_model
from etmf.web import command, db_session
from etmf.web.studies import load_study, visible_documents

bp = Blueprint("inspection", __name__)

DOCUMENT_PANELS = ["inspection/_document_panel.html"]


@bp.app_context_processor
def _panel_helpers() -> dict[str, object]:
    def inline_version(doc: Document) -> DocumentVersion | None:
        """The current version when it is a PDF a browser can show inline."""
        if not doc.current_version_id:
            return None
        v = db_session().get(DocumentVersion, doc.current_version_id)
        return v if v is not None and v.mime == "application/pdf" else None

    return {"inspection_inline_version": inline_version,
            "inspection_kinds": inspection.KINDS}


@bp.get("/studies/<int:study_id>/inspection")
@auth_required("session")
def landing(study_id: int):  # type: ignore[no-untyped-def]
    """Summary of the study for an inspector: counts by zone, requests, completeness."""
    from etmf.tracking.summary import ensure_fresh

    study = load_study(study_id)
    session = db_session()
    ensure_fresh(session, services().db.write_session, study_id)
    base = visible_documents(study_id).subquery()
    by_zone = dict(session.execute(select(base.c.zone, func.count()).group_by(base.c.zone))
                   .all())
    return render_template(
        "inspection/landing.html", study=study, model=load_reference_model(), by_zone=by_zone,
        total=sum(by_zone.values()), open_requests=inspection.open_count(session, study_id),
        completeness=inspection.completeness(session, study_id, services().clock.now().date()))


@bp.get("/studies/<int:study_id>/inspection/requests")
@auth_required("session")
def requests(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    rows = inspection.requests_of(db_session(), study_id)
    return render_template("inspection/requests.html", study=study, rows=rows,
                           document_id=request.args.get("document", type=int))


@bp.post("/studies/<int:study_id>/inspection/requests")
@auth_required("session")
def raise_request(study_id: int):  # type: ignore[no-untyped-def]
    form = request.form
    document_id = form.get("document_id", "").strip()
    with command() as uow:
        request_id = inspection.raise_request(uow, current_access(), inspection.NewRequest(
            study_id=study_id, kind=form.get("kind", ""), subject=form.get("subject", ""),
            text=form.get("text", ""),
            document_id=int(document_id) if document_id.isdigit() else None))
        uow.commit()
    flash(f"Request {request_id} was sent to the study team.", "success")
    return redirect(url_for("inspection.requests", study_id=study_id))


@bp.post("/inspection-requests/<int:request_id>/answer")
@auth_required("session")
def answer(request_id: int):  # type: ignore[no-untyped-def]
    req = db_session().get(InspectionRequest, request_id)
    if req is None:
        raise NotFound("There is no such inspection request.")
    expected = request.form.get("version", "")
    if not expected.isdigit():
        raise ValidationError("The form is missing the record version; reload the page.")
    document_id = request.form.get("document_id", "").strip()
    with command() as uow:
        inspection.answer_request(
            uow, current_access(), request_id, request.form.get("answer", ""),
            expected_version=int(expected),
            document_id=int(document_id) if document_id.isdigit() else None)
        uow.commit()
    flash(f"Request {request_id} was answered.", "success")
    return redirect(url_for("inspection.requests", study_id=req.study_id))


def can_answer(study_id: int) -> bool:
    return current_access().can(Permission.ANSWER_INSPECTION_REQUEST, study_id)
