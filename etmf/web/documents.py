"""Document pages: file (many at once), view, versions, metadata, QC, placeholders and
signposts, download, audit trail. Thin: parse, call one service, render."""

from __future__ import annotations

from datetime import date

from flask import (
    Blueprint,
    flash,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_security import auth_required
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.audit.models import Event
from etmf.audit.views import describe_event
from etmf.bootstrap import services
from etmf.documents import filing
from etmf.documents import services as docs
from etmf.documents.indexing import index_after_commit
from etmf.documents.lifecycle import (
    PLACEHOLDER,
    QC_CATEGORIES,
    SIGNPOST,
    VISIBLE_WITHOUT_DRAFTS,
    Action,
    State,
    allowed_actions,
    is_final,
    status_label,
)
from etmf.documents.models import Document, DocumentText, DocumentVersion, QcIssue
from etmf.documents.upload import receive_file
from etmf.errors import EtmfError, NotFound, ValidationError
from etmf.reference_model.model import FilingLevel, load_reference_model
from etmf.reference_model.picker import search_artifacts
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

#: Fields of one metadata row of the filing form (``rows-<i>-<field>``).
ROW_FIELDS = ("token", "artifact", "sub_artifact", "level", "country_id", "site_id", "person",
              "title", "document_date", "expiry_date", "language", "version_label",
              "suggested", "skip")
MAX_ROWS = 1000
#: QC issue rows offered on the reject form.
ISSUE_ROWS = 3


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc: RequestEntityTooLarge):  # type: ignore[no-untyped-def]
    limit = services().settings.max_upload_mb
    message = (f"The upload is larger than the limit of {limit} MB for one file. "
               "Nothing was stored; split it or ask an administrator.")
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return jsonify({"error": {"status": 413, "code": "too_large",
                                  "title": "The file is too large", "message": message,
                                  "request_id": g.get("request_id", "")}}), 413
    return render_template("error.html", status=413, title="The file is too large",
                           message=message, request_id=g.get("request_id", "")), 413


def load_document(document_id: int) -> Document:
    doc = db_session().get(Document, document_id)
    access = current_access()
    if doc is None or doc.study_id not in access.study_ids():
        raise NotFound("There is no such document, or you have no access to it.")
    need = (Permission.VIEW_APPROVED if doc.status in VISIBLE_WITHOUT_DRAFTS
            else Permission.VIEW_DRAFTS)
    if not access.can(need, doc.study_id, doc.site_id, zone=doc.zone):
        raise NotFound("There is no such document, or you have no access to it.")
    return doc


def parse_date(value: str | None, label: str) -> date | None:
    """A date typed as YYYY-MM-DD, or a ValidationError naming the field."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{label} {value!r} is not a date (use YYYY-MM-DD).") from None


def _date_field(name: str, label: str) -> date | None:
    return parse_date(request.form.get(name), label)


def _int(value: str | None) -> int | None:
    value = (value or "").strip()
    return int(value) if value.isdigit() else None


def _expected_version() -> int:
    expected = request.form.get("version", "")
    if not expected.isdigit():
        raise ValidationError("The form is missing the record version; reload the page.")
    return int(expected)


def _filing_context(study_id: int) -> dict[str, object]:
    session = db_session()
    return {
        "sites": session.scalars(select(Site).where(Site.study_id == study_id)
                                 .order_by(Site.number)).all(),
        "countries": session.scalars(select(Country).where(Country.study_id == study_id)
                                     .order_by(Country.code)).all(),
        "model": load_reference_model(),
        "model_ids": {a.unique_id for a in load_reference_model().artifacts},
        "levels": [lv.value for lv in FilingLevel],
    }


# --- the artifact picker ------------------------------------------------------------------


@bp.get("/reference-model/artifacts")
@auth_required("session")
def artifacts_json():  # type: ignore[no-untyped-def]
    """Artifacts matching ``q`` (names, numbers, sub-artifacts, definitions), best first."""
    model = load_reference_model()
    limit = _int(request.args.get("limit")) or 15
    matches = search_artifacts(model, request.args.get("q", "")[:200], limit=min(limit, 50))
    return jsonify([{
        "unique_id": m.artifact.unique_id, "number": m.artifact.number,
        "name": m.artifact.name, "label": m.artifact.label,
        "dating_convention": m.artifact.dating_convention,
        "sub_artifacts": list(m.artifact.sub_artifacts),
        "levels": [lv.value for lv in model.levels_of(m.artifact)],
        "matched": m.field.value, "matched_text": m.matched_text,
    } for m in matches])


# --- filing many files at once ---------------------------------------------------------------


@bp.get("/studies/<int:study_id>/file")
@auth_required("session")
def file_new(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    current_access().require(Permission.FILE, study_id)
    return render_template("file.html", study=study,
                           max_upload_mb=services().settings.max_upload_mb)


@bp.post("/studies/<int:study_id>/file")
@auth_required("session")
def file_upload(study_id: int):  # type: ignore[no-untyped-def]
    """Step 1: check and store each file (and each file of a ZIP); then one row each."""
    study = load_study(study_id)
    access = current_access()
    access.require(Permission.FILE, study_id)
    svc = services()
    uploads = [filing.Upload(f.filename or "unnamed", f.stream)
               for f in request.files.getlist("files") + request.files.getlist("file")
               if f.filename]
    if not uploads:
        raise ValidationError("Choose one or more files to upload.")
    model = load_reference_model()
    stored, refused = filing.receive_batch(
        svc.blobs, uploads, tmp_dir=svc.settings.instance_path / "tmp",
        max_bytes=svc.settings.max_upload_mb * 1024 * 1024)
    staged = filing.stage(svc, stored, user_id=access.user_id, study_id=study_id, model=model)
    rows = [_row_from_staged(i, s) for i, s in enumerate(staged)]
    status = 200 if rows or not refused else refused[0].status
    return _render_rows(study, rows, refused, filed=[]), status


def _row_from_staged(index: int, s: filing.StagedFile) -> dict[str, object]:
    title = s.stored.filename.rsplit(".", 1)[0].replace("_", " ").strip()
    return {
        "index": index, "filename": s.stored.filename, "size": s.stored.size,
        "mime": s.stored.mime, "from_archive": s.from_archive, "duplicates": s.duplicates,
        "suggestions": [(sg.artifact.unique_id, sg.artifact.label,
                         round(sg.confidence * 100)) for sg in s.suggestions],
        "errors": [],
        "values": {"token": s.token, "title": title[:500], "level": "",
                   "language": "en", "version_label": "1.0",
                   "suggested": ",".join(f"{sg.artifact.unique_id}:"
                                         f"{round(sg.confidence * 100)}"
                                         for sg in s.suggestions)},
    }


def _render_rows(study, rows, refused, filed):  # type: ignore[no-untyped-def]
    return render_template("documents/rows.html", study=study, rows=rows, refused=refused,
                           filed=filed, **_filing_context(study.id))


def _suggestions_from(text: str) -> list[tuple[str, str, int]]:
    model = load_reference_model()
    out = []
    for part in text.split(",")[:3]:
        uid, _, pct = part.partition(":")
        try:
            out.append((uid, model.artifact(uid).label, int(pct)))
        except (LookupError, ValueError):
            continue
    return out


@bp.post("/studies/<int:study_id>/file/commit")
@auth_required("session")
def file_commit(study_id: int):  # type: ignore[no-untyped-def]
    """Step 2: file every complete row, each in its own transaction."""
    study = load_study(study_id)
    access = current_access()
    access.require(Permission.FILE, study_id)
    svc = services()
    model = load_reference_model()
    count = min(_int(request.form.get("row_count")) or 0, MAX_ROWS)
    to_qc = request.form.get("send_to_qc") == "1"
    filed: list[tuple[int, str]] = []
    failed: list[dict[str, object]] = []
    for i in range(count):
        values = {f: request.form.get(f"rows-{i}-{f}", "") for f in ROW_FIELDS}
        if values["skip"] or not values["token"]:
            continue
        try:
            stored = filing.read_staging_token(svc.settings.secret_key, values["token"],
                                               access.user_id, study_id)
        except EtmfError as exc:
            failed.append(_failed_row(len(failed), values, None, [exc.message]))
            continue
        problems = filing.check_required(model, values["artifact"], values)
        if problems:
            failed.append(_failed_row(len(failed), values, stored, problems))
            continue
        try:
            cmd = docs.FileDocument(
                study_id=study_id, artifact=values["artifact"], title=values["title"],
                file=stored, level=values["level"], country_id=_int(values["country_id"]),
                site_id=_int(values["site_id"]),
                sub_artifact=values["sub_artifact"] or None,
                person=values["person"] or None, language=values["language"] or None,
                document_date=parse_date(values["document_date"], "The document date"),
                expiry_date=parse_date(values["expiry_date"], "The expiry date"),
                version_label=values["version_label"] or "1.0",
            )
            with command() as uow:
                doc_id = docs.file_document(uow, access, cmd)
                if to_qc:
                    docs.transition(uow, access, doc_id, Action.SUBMIT_QC, expected_version=1)
                index_after_commit(uow, svc, doc_id)
                uow.commit()
            filed.append((doc_id, values["title"].strip()))
        except EtmfError as exc:
            failed.append(_failed_row(len(failed), values, stored, [exc.message]))
    if not failed:
        where = " and sent to QC" if to_qc else " as drafts"
        flash(f"Filed {len(filed)} document{'s' if len(filed) != 1 else ''}{where}.",
              "success")
        return redirect(url_for("studies.documents", study_id=study_id, sort="filed"))
    return _render_rows(study, failed, [], filed), (200 if filed else 400)


def _failed_row(index: int, values: dict[str, str], stored: docs.StoredFile | None,
                errors: list[str]) -> dict[str, object]:
    return {
        "index": index, "filename": stored.filename if stored else "(expired upload)",
        "size": stored.size if stored else 0, "mime": stored.mime if stored else "",
        "from_archive": None, "duplicates": [], "errors": errors,
        "suggestions": _suggestions_from(values.get("suggested", "")), "values": values,
    }


# --- placeholders and signposts (REC-7) ------------------------------------------------------


@bp.route("/studies/<int:study_id>/records/new", methods=["GET", "POST"])
@auth_required("session")
def record_new(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    access = current_access()
    access.require(Permission.FILE, study_id)
    if request.method == "GET":
        return render_template("documents/record_new.html", study=study, form={},
                               kind=request.args.get("kind", PLACEHOLDER),
                               **_filing_context(study_id))
    form = request.form
    kind = form.get("kind", PLACEHOLDER)
    if kind not in (PLACEHOLDER, SIGNPOST):
        raise ValidationError("Choose a placeholder or a signpost.")
    cmd = docs.NewRecord(
        study_id=study_id, artifact=form.get("artifact", ""), title=form.get("title", ""),
        level=form.get("level", "trial"), country_id=_int(form.get("country_id")),
        site_id=_int(form.get("site_id")), sub_artifact=form.get("sub_artifact") or None,
        person=form.get("person") or None, language=form.get("language") or None,
        document_date=_date_field("document_date", "The document date"),
        expiry_date=_date_field("expiry_date", "The expiry date"),
        system=form.get("system"), location=form.get("location"),
    )
    svc = services()
    with command() as uow:
        create = docs.create_placeholder if kind == PLACEHOLDER else docs.create_signpost
        doc_id = create(uow, access, cmd)
        index_after_commit(uow, svc, doc_id)
        uow.commit()
    flash("Placeholder recorded: upload its file when it arrives." if kind == PLACEHOLDER
          else "Signpost recorded.", "success")
    return redirect(url_for("documents.detail", document_id=doc_id))


# --- one document ------------------------------------------------------------------------------


@bp.get("/documents/<int:document_id>")
@auth_required("session")
def detail(document_id: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    session = db_session()
    study = load_study(doc.study_id)
    artifact = load_reference_model().artifact(doc.artifact_id)
    versions = session.scalars(select(DocumentVersion).where(
        DocumentVersion.document_id == doc.id).order_by(DocumentVersion.number.desc())).all()
    texts = {t.sha256: t for t in session.scalars(select(DocumentText).where(
        DocumentText.sha256.in_([v.sha256 for v in versions])))} if versions else {}
    access = current_access()
    locked = study.locked_at is not None
    if doc.status in (PLACEHOLDER, SIGNPOST):
        lifecycle = [Action.WITHDRAW]
    else:
        lifecycle = allowed_actions(doc.status)
    actions = [] if locked else [
        a for a in lifecycle
        if access.can(docs._ACTION_PERMISSION[a], doc.study_id, doc.site_id)]
    site = session.get(Site, doc.site_id) if doc.site_id else None
    # The page names the site of a site-level document, else its country.
    country = session.get(Country, doc.country_id) if doc.country_id and not site else None
    events = session.scalars(select(Event).where(
        Event.stream_type == "document", Event.stream_id == str(doc.id)).order_by(Event.seq)
    ).all()
    history = [describe_event(e) for e in events
               if e.type in ("document.metadata_changed", "document.version_added",
                             "document.filed")]
    audit = ([describe_event(e) for e in events]
             if access.can(Permission.VIEW_AUDIT, doc.study_id, doc.site_id) else [])
    issues = session.scalars(select(QcIssue).where(QcIssue.document_id == doc.id)
                             .order_by(QcIssue.id)).all()
    can_file = not locked and access.can(Permission.FILE, doc.study_id, doc.site_id)
    can_add_version = can_file and doc.status not in (State.IN_QC, State.OBSOLETE, SIGNPOST)
    current = next((v for v in versions if v.id == doc.current_version_id), None)
    return render_template(
        "document.html", doc=doc, study=study, artifact=artifact, versions=versions,
        texts=texts, actions=actions, action_labels=ACTION_LABELS, site=site,
        country=country, events=audit, history=history, issues=issues,
        open_issues=[i for i in issues if i.answered_at is None],
        reason_required={Action.WITHDRAW}, qc_categories=QC_CATEGORIES,
        issue_rows=range(ISSUE_ROWS), can_file=can_file, can_add_version=can_add_version,
        can_edit=not locked and access.can(Permission.EDIT_METADATA, doc.study_id,
                                           doc.site_id),
        locked=locked, status_label=status_label, placeholder=doc.status == PLACEHOLDER,
        signpost=doc.status == SIGNPOST,
        next_major=docs.next_version_label(current.label if current else None, major=True),
        next_minor=docs.next_version_label(current.label if current else None, major=False),
    )


@bp.post("/documents/<int:document_id>/transition")
@auth_required("session")
def transition(document_id: int):  # type: ignore[no-untyped-def]
    load_document(document_id)
    action = request.form.get("action", "")
    if action not in {a.value for a in Action}:
        raise ValidationError(f"{action!r} is not a document action.")
    issues = []
    for k in range(ISSUE_ROWS):
        comment = request.form.get(f"issue-{k}-comment", "").strip()
        if comment:
            issues.append(docs.NewQcIssue(request.form.get(f"issue-{k}-category", ""),
                                          comment))
    expected = _expected_version()
    with command() as uow:
        new_state = docs.transition(uow, current_access(), document_id, action,
                                    expected_version=expected,
                                    reason=request.form.get("reason") or None,
                                    issues=issues)
        index_after_commit(uow, services(), document_id)
        uow.commit()
    flash(f"The document is now {new_state.label}.", "success")
    return redirect(url_for("documents.detail", document_id=document_id))


@bp.post("/documents/<int:document_id>/versions")
@auth_required("session")
def add_version(document_id: int):  # type: ignore[no-untyped-def]
    """Upload new content: always a new version (major or minor), never an overwrite."""
    doc = load_document(document_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("Choose the file of the new version.")
    expected = _expected_version()
    svc = services()
    current = db_session().get(DocumentVersion, doc.current_version_id) \
        if doc.current_version_id else None
    label = request.form.get("label", "").strip()
    if not label:
        label = ("1.0" if current is None else
                 docs.next_version_label(current.label,
                                         major=request.form.get("kind") != "minor"))
    stored = receive_file(svc.blobs, upload.stream, upload.filename,
                          tmp_dir=svc.settings.instance_path / "tmp",
                          max_bytes=svc.settings.max_upload_mb * 1024 * 1024)
    with command() as uow:
        docs.add_version(uow, current_access(), document_id, stored, label=label,
                         expected_version=expected,
                         note=request.form.get("note", "").strip()[:2000] or None)
        index_after_commit(uow, svc, document_id)
        uow.commit()
    flash(f"Version {label} uploaded as a draft.", "success")
    return redirect(url_for("documents.detail", document_id=document_id))


EDITABLE = ("title", "sub_artifact", "person", "language", "document_date", "expiry_date")


@bp.route("/documents/<int:document_id>/edit", methods=["GET", "POST"])
@auth_required("session")
def edit(document_id: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    study = load_study(doc.study_id)
    artifact = load_reference_model().artifact(doc.artifact_id)
    current_access().require(Permission.EDIT_METADATA, doc.study_id, doc.site_id)
    final = is_final(doc.status)
    if request.method == "GET":
        return render_template("documents/edit.html", doc=doc, study=study,
                               artifact=artifact, final=final)
    changes: dict[str, object] = {}
    for name in EDITABLE:
        if name not in request.form:
            continue
        if name.endswith("_date"):
            changes[name] = _date_field(name, name.replace("_", " ").capitalize())
        else:
            changes[name] = request.form.get(name, "").strip() or None
    expected = _expected_version()
    with command() as uow:
        docs.change_metadata(uow, current_access(), document_id, changes,
                             expected_version=expected,
                             reason=request.form.get("reason") or None)
        index_after_commit(uow, services(), document_id)
        uow.commit()
    flash("Metadata saved; the earlier values stay in the history.", "success")
    return redirect(url_for("documents.detail", document_id=document_id))


@bp.post("/qc-issues/<int:issue_id>/answer")
@auth_required("session")
def answer_issue(issue_id: int):  # type: ignore[no-untyped-def]
    issue = db_session().get(QcIssue, issue_id)
    if issue is None:
        raise NotFound("There is no such QC issue.")
    load_document(issue.document_id)
    expected = _expected_version()
    with command() as uow:
        docs.answer_qc_issue(uow, current_access(), issue_id,
                             request.form.get("response", ""), expected_version=expected)
        uow.commit()
    flash("Answer recorded.", "success")
    return redirect(url_for("documents.detail", document_id=issue.document_id))


@bp.get("/studies/<int:study_id>/qc-issues")
@auth_required("session")
def qc_issues(study_id: int):  # type: ignore[no-untyped-def]
    """Every QC issue of the study the user may see, open first."""
    study = load_study(study_id)
    access = current_access()
    session = db_session()
    show = request.args.get("show", "open")
    q = (select(QcIssue, Document).join(Document, Document.id == QcIssue.document_id)
         .where(QcIssue.study_id == study_id))
    sites = access.site_scope(study_id)
    if sites is not None:
        q = q.where(Document.site_id.is_(None) | Document.site_id.in_(sites))
    if not access.can(Permission.VIEW_DRAFTS, study_id):
        q = q.where(Document.status.in_(VISIBLE_WITHOUT_DRAFTS))
    if show == "open":
        q = q.where(QcIssue.answered_at.is_(None))
    rows = session.execute(q.order_by(QcIssue.answered_at.is_not(None), QcIssue.id.desc())
                           .limit(500)).all()
    open_count = session.scalar(select(func.count()).select_from(
        q.where(QcIssue.answered_at.is_(None)).order_by(None).subquery()))
    return render_template("documents/qc_issues.html", study=study, rows=rows, show=show,
                           open_count=open_count)


@bp.get("/documents/<int:document_id>/versions/<int:number>/download")
@auth_required("session")
def download(document_id: int, number: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    version = db_session().scalar(select(DocumentVersion).where(
        DocumentVersion.document_id == doc.id, DocumentVersion.number == number))
    if version is None:
        raise NotFound("There is no such version of this document.")
    from etmf.records.download import verified_download

    disposition = "inline" if request.args.get("inline") else "attachment"
    return verified_download(doc, version, actor=current_access().actor,
                             disposition=disposition, filename=_ascii(version.filename))


def _ascii(name: str) -> str:
    return "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
