"""Document pages: file, view, versions, lifecycle actions, download, audit trail."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_security import auth_required
from sqlalchemy import select

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.audit.models import Event
from etmf.audit.views import describe_event
from etmf.bootstrap import services
from etmf.documents import services as docs
from etmf.documents.lifecycle import Action, State, allowed_actions
from etmf.documents.models import Document, DocumentVersion
from etmf.documents.upload import receive_file
from etmf.errors import NotFound, ValidationError
from etmf.reference_model.model import load_reference_model
from etmf.studies.models import Country, Site
from etmf.web import command, db_session
from etmf.web.studies import load_study

bp = Blueprint("documents", __name__)

ACTION_LABELS = {
    Action.SUBMIT_QC: "Send to QC",
    Action.APPROVE: "Approve",
    Action.REJECT: "Reject (back to draft)",
    Action.WITHDRAW: "Withdraw (obsolete)",
}


def load_document(document_id: int) -> Document:
    doc = db_session().get(Document, document_id)
    access = current_access()
    if doc is None or doc.study_id not in access.study_ids():
        raise NotFound("There is no such document, or you have no access to it.")
    need = (Permission.VIEW_APPROVED if doc.status in (State.APPROVED, State.SUPERSEDED)
            else Permission.VIEW_DRAFTS)
    if not access.can(need, doc.study_id, doc.site_id):
        raise NotFound("There is no such document, or you have no access to it.")
    return doc


def _date_field(name: str, label: str) -> date | None:
    value = request.form.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{label} {value!r} is not a date (use YYYY-MM-DD).") from None


def _int_field(name: str) -> int | None:
    value = request.form.get(name, "").strip()
    return int(value) if value.isdigit() else None


@bp.route("/studies/<int:study_id>/file", methods=["GET", "POST"])
@auth_required("session")
def file_new(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    current_access().require(Permission.FILE, study_id)
    session = db_session()
    sites = session.scalars(select(Site).where(Site.study_id == study_id)
                            .order_by(Site.number)).all()
    countries = session.scalars(select(Country).where(Country.study_id == study_id)
                                .order_by(Country.code)).all()
    model = load_reference_model()
    if request.method == "GET":
        return render_template("file.html", study=study, sites=sites, countries=countries,
                               model=model, form={})
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("Choose a file to upload.")
    svc = services()
    stored = receive_file(
        svc.blobs, upload.stream, upload.filename,
        tmp_dir=svc.settings.instance_path / "tmp",
        max_bytes=svc.settings.max_upload_mb * 1024 * 1024,
    )
    cmd = docs.FileDocument(
        study_id=study_id,
        artifact=request.form.get("artifact", ""),
        title=request.form.get("title", ""),
        file=stored,
        level=request.form.get("level", "trial"),
        country_id=_int_field("country_id"),
        site_id=_int_field("site_id"),
        sub_artifact=request.form.get("sub_artifact") or None,
        person=request.form.get("person") or None,
        language=request.form.get("language") or None,
        document_date=_date_field("document_date", "The document date"),
        expiry_date=_date_field("expiry_date", "The expiry date"),
        version_label=request.form.get("version_label", "1.0") or "1.0",
    )
    with command() as uow:
        doc_id = docs.file_document(uow, current_access(), cmd)
        uow.commit()
    flash(f"Filed “{cmd.title.strip()}” as a draft.", "success")
    return redirect(url_for("documents.detail", document_id=doc_id))


@bp.get("/documents/<int:document_id>")
@auth_required("session")
def detail(document_id: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    session = db_session()
    study = load_study(doc.study_id)
    artifact = load_reference_model().artifact(doc.artifact_id)
    versions = session.scalars(select(DocumentVersion).where(
        DocumentVersion.document_id == doc.id).order_by(DocumentVersion.number.desc())).all()
    access = current_access()
    actions = [a for a in allowed_actions(doc.status)
               if access.can(docs._ACTION_PERMISSION[a], doc.study_id, doc.site_id)]
    site = session.get(Site, doc.site_id) if doc.site_id else None
    events = []
    if access.can(Permission.VIEW_AUDIT, doc.study_id, doc.site_id):
        events = [describe_event(e) for e in session.scalars(
            select(Event).where(Event.stream_type == "document",
                                Event.stream_id == str(doc.id)).order_by(Event.seq))]
    return render_template("document.html", doc=doc, study=study, artifact=artifact,
                           versions=versions, actions=actions, action_labels=ACTION_LABELS,
                           site=site, events=events,
                           reason_required={Action.REJECT, Action.WITHDRAW})


@bp.post("/documents/<int:document_id>/transition")
@auth_required("session")
def transition(document_id: int):  # type: ignore[no-untyped-def]
    load_document(document_id)
    action = request.form.get("action", "")
    if action not in {a.value for a in Action}:
        raise ValidationError(f"{action!r} is not a document action.")
    expected = request.form.get("version", "")
    if not expected.isdigit():
        raise ValidationError("The form is missing the record version; reload the page.")
    with command() as uow:
        new_state = docs.transition(uow, current_access(), document_id, action,
                                    expected_version=int(expected),
                                    reason=request.form.get("reason") or None)
        uow.commit()
    flash(f"The document is now {new_state.label}.", "success")
    return redirect(url_for("documents.detail", document_id=document_id))


@bp.get("/documents/<int:document_id>/versions/<int:number>/download")
@auth_required("session")
def download(document_id: int, number: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    version = db_session().scalar(select(DocumentVersion).where(
        DocumentVersion.document_id == doc.id, DocumentVersion.number == number))
    if version is None:
        raise NotFound("There is no such version of this document.")
    reader = services().blobs.open(version.sha256)

    def stream():  # type: ignore[no-untyped-def]
        with reader as fh:
            while chunk := fh.read(256 * 1024):
                yield chunk

    disposition = "inline" if request.args.get("inline") else "attachment"
    return Response(
        stream(), mimetype=version.mime,
        headers={"Content-Disposition": f'{disposition}; filename="{_ascii(version.filename)}"',
                 "Content-Length": str(version.size)},
    )


def _ascii(name: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
