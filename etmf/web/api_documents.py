"""REST API for documents (``/api/v1``): file with metadata, add a version, transition,
download, search, browse the tree. Same services, same permission checks and the same
token authentication as the rest of the API (etmf.api); errors are JSON."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, url_for
from sqlalchemy import func, select
from werkzeug.exceptions import RequestEntityTooLarge

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.api import api_auth, api_blueprint
from etmf.api.openapi import register_path, register_schema
from etmf.audit.store import UnitOfWork
from etmf.bootstrap import services
from etmf.documents import services as docs
from etmf.documents.counts import tree as tree_counts
from etmf.documents.indexing import index_after_commit
from etmf.documents.lifecycle import Action
from etmf.documents.models import Document, DocumentVersion
from etmf.documents.upload import ALLOWED_TYPES, receive_file
from etmf.errors import NotFound, ServiceUnavailable, ValidationError
from etmf.reference_model.model import load_reference_model
from etmf.search.base import SearchQuery, SearchUnavailable
from etmf.web import command, db_session
from etmf.web.documents import _too_large, load_document, parse_date
from etmf.web.search import scope_for, zones_for
from etmf.web.studies import document_scope, load_study, visible_documents

bp = api_blueprint("api_documents", __name__)
bp.register_error_handler(RequestEntityTooLarge, _too_large)


_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


def _ref(name: str, description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}}


register_schema("DocumentVersion", {
    "type": "object",
    "required": ["number", "label", "status", "sha256", "size", "mime", "filename",
                 "created_at", "created_by", "download_url"],
    "properties": {"number": {"type": "integer"}, "label": {"type": "string"},
                   "status": {"type": "string"}, "sha256": {"type": "string"},
                   "size": {"type": "integer"}, "mime": {"type": "string"},
                   "filename": {"type": "string"}, "created_at": {"type": "string"},
                   "created_by": {"type": "string"}, "download_url": {"type": "string"}}})
register_schema("Document", {
    "type": "object",
    "required": ["id", "study_id", "artifact_id", "artifact_number", "title", "level",
                 "status", "version", "document_date", "created_at"],
    "properties": {
        "id": {"type": "integer"}, "study_id": {"type": "integer"},
        "artifact_id": {"type": "string"}, "artifact_number": {"type": "string"},
        "title": {"type": "string"}, "level": {"type": "string"},
        "site_id": {"type": "integer", "nullable": True},
        "country_id": {"type": "integer", "nullable": True},
        "status": {"type": "string"}, "version": {"type": "integer"},
        "document_date": {"type": "string", "nullable": True},
        "expiry_date": {"type": "string", "nullable": True},
        "person": {"type": "string", "nullable": True},
        "language": {"type": "string", "nullable": True},
        "sub_artifact": {"type": "string", "nullable": True},
        "created_at": {"type": "string"},
        "approved_at": {"type": "string", "nullable": True},
        "versions": {"type": "array",
                     "items": {"$ref": "#/components/schemas/DocumentVersion"}}}})

_METADATA_FIELDS = {
    "artifact": {"type": "string", "description": "Unique id or number, e.g. 02.01.02"},
    "title": {"type": "string"}, "level": {"type": "string",
                                           "enum": ["trial", "country", "site"]},
    "country_id": {"type": "integer"}, "site_id": {"type": "integer"},
    "sub_artifact": {"type": "string"}, "person": {"type": "string"},
    "language": {"type": "string"}, "document_date": {"type": "string", "format": "date"},
    "expiry_date": {"type": "string", "format": "date"},
    "version_label": {"type": "string"},
}


def _doc_json(doc: Document, versions: list[DocumentVersion] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": doc.id, "study_id": doc.study_id, "artifact_id": doc.artifact_id,
        "artifact_number": doc.artifact_number, "title": doc.title, "level": doc.level,
        "site_id": doc.site_id, "country_id": doc.country_id, "status": doc.status,
        "version": doc.version, "sub_artifact": doc.sub_artifact, "person": doc.person,
        "language": doc.language,
        "document_date": doc.document_date.isoformat() if doc.document_date else None,
        "expiry_date": doc.expiry_date.isoformat() if doc.expiry_date else None,
        "created_at": doc.created_at.isoformat(),
        "approved_at": doc.approved_at.isoformat() if doc.approved_at else None,
    }
    if versions is not None:
        body["versions"] = [{
            "number": v.number, "label": v.label, "status": v.status, "sha256": v.sha256,
            "size": v.size, "mime": v.mime, "filename": v.filename,
            "created_at": v.created_at.isoformat(), "created_by": v.created_by_name,
            "download_url": url_for("api_documents.download", document_id=doc.id,
                                    number=v.number),
        } for v in versions]
    return body


def _int(value: Any, label: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{label} must be a whole number, not {value!r}.") from None


def _document_with_versions(doc_id: int) -> dict[str, Any]:
    # End the request's read transaction: on SQLite (WAL) it would not see our own commit.
    db_session().rollback()
    doc = load_document(doc_id)
    versions = db_session().scalars(select(DocumentVersion).where(
        DocumentVersion.document_id == doc.id).order_by(DocumentVersion.number)).all()
    return _doc_json(doc, list(versions))


# --- file a document ------------------------------------------------------------------------

register_path("/studies/{study_id}/documents", "post", {
    "summary": "File a document: one file with its metadata, as a draft",
    "operationId": "fileDocument", "parameters": [_path_id("study_id")],
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "artifact", "title"],
        "properties": {"file": {"type": "string", "format": "binary"},
                       **_METADATA_FIELDS}}}}},
    "responses": {**_ref("Document", "The filed document", "201"),
                  "413": {"description": "The file is larger than the limit"}}})


@bp.post("/studies/<int:study_id>/documents")
@api_auth
def file_document(study_id: int):  # type: ignore[no-untyped-def]
    # The access checks need no database (a grant names an existing study, and the service
    # checks the study again under the write lock): no read session, no extra connection.
    access = current_access()
    access.require(Permission.VIEW_STUDY, study_id)  # as load_study: 404 if not visible
    access.require(Permission.FILE, study_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("Send the file as the multipart field 'file'.")
    form = request.form
    cmd_kwargs = {
        "artifact": form.get("artifact", ""), "title": form.get("title", ""),
        "level": form.get("level", "trial"),
        "country_id": _int(form.get("country_id"), "country_id"),
        "site_id": _int(form.get("site_id"), "site_id"),
        "sub_artifact": form.get("sub_artifact") or None,
        "person": form.get("person") or None, "language": form.get("language") or None,
        "document_date": parse_date(form.get("document_date"), "document_date"),
        "expiry_date": parse_date(form.get("expiry_date"), "expiry_date"),
        "version_label": form.get("version_label") or "1.0",
    }
    svc = services()
    stored = receive_file(svc.blobs, upload.stream, upload.filename,
                          tmp_dir=svc.settings.instance_path / "tmp",
                          max_bytes=svc.settings.max_upload_mb * 1024 * 1024)
    with command() as uow:
        doc_id = docs.file_document(uow, access, docs.FileDocument(
            study_id=study_id, file=stored, **cmd_kwargs))  # type: ignore[arg-type]
        index_after_commit(uow, svc, doc_id)
        body = _filed_json(uow, doc_id)
        uow.commit()
    return jsonify(body), 201


def _filed_json(uow: UnitOfWork, doc_id: int) -> dict[str, Any]:
    """The answer to a filing, from the rows the command just wrote (in the session): no
    second read session and connection after the commit, as _document_with_versions needs."""
    rows = uow.session.execute(  # one statement: it runs under the write lock
        select(Document, DocumentVersion)
        .join(DocumentVersion, DocumentVersion.document_id == Document.id)
        .where(Document.id == doc_id).order_by(DocumentVersion.number)).all()
    return _doc_json(rows[0][0], [version for _doc, version in rows])


# --- one document, its versions, transitions ------------------------------------------------

register_path("/documents/{document_id}", "get", {
    "summary": "A document with its metadata and every version", "operationId": "getDocument",
    "parameters": [_path_id("document_id")],
    "responses": _ref("Document", "The document")})


@bp.get("/documents/<int:document_id>")
@api_auth
def get_document(document_id: int):  # type: ignore[no-untyped-def]
    return jsonify(_document_with_versions(document_id))


register_path("/documents/{document_id}/versions", "post", {
    "summary": "Upload new content as a new version (never an overwrite)",
    "operationId": "addVersion", "parameters": [_path_id("document_id")],
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file", "expected_version"],
        "properties": {"file": {"type": "string", "format": "binary"},
                       "expected_version": {"type": "integer"},
                       "kind": {"type": "string", "enum": ["major", "minor"]},
                       "label": {"type": "string"}, "note": {"type": "string"}}}}}},
    "responses": {**_ref("Document", "The document with its new version", "201"),
                  "413": {"description": "The file is larger than the limit"}}})


@bp.post("/documents/<int:document_id>/versions")
@api_auth
def add_version(document_id: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("Send the file as the multipart field 'file'.")
    expected = _int(request.form.get("expected_version"), "expected_version")
    if expected is None:
        raise ValidationError("expected_version (the document's 'version') is required.")
    current = db_session().get(DocumentVersion, doc.current_version_id) \
        if doc.current_version_id else None
    label = (request.form.get("label") or "").strip() or (
        "1.0" if current is None else docs.next_version_label(
            current.label, major=request.form.get("kind") != "minor"))
    svc = services()
    stored = receive_file(svc.blobs, upload.stream, upload.filename,
                          tmp_dir=svc.settings.instance_path / "tmp",
                          max_bytes=svc.settings.max_upload_mb * 1024 * 1024)
    with command() as uow:
        docs.add_version(uow, current_access(), document_id, stored, label=label,
                         expected_version=expected,
                         note=(request.form.get("note") or "").strip()[:2000] or None)
        index_after_commit(uow, svc, document_id)
        uow.commit()
    return jsonify(_document_with_versions(document_id)), 201


register_path("/documents/{document_id}/transition", "post", {
    "summary": "Move the current version through the lifecycle (QC, approve, reject, "
               "withdraw)", "operationId": "transitionDocument",
    "parameters": [_path_id("document_id")],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["action", "expected_version"],
        "properties": {
            "action": {"type": "string", "enum": [a.value for a in Action]},
            "expected_version": {"type": "integer"}, "reason": {"type": "string"},
            "qc_issues": {"type": "array", "items": {
                "type": "object", "required": ["category", "comment"],
                "properties": {"category": {"type": "string"},
                               "comment": {"type": "string"}}}}}}}}},
    "responses": _ref("Document", "The document after the step")})


@bp.post("/documents/<int:document_id>/transition")
@api_auth
def transition(document_id: int):  # type: ignore[no-untyped-def]
    load_document(document_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError("Send a JSON object with 'action' and 'expected_version'.")
    expected = body.get("expected_version")
    if not isinstance(expected, int) or isinstance(expected, bool):
        raise ValidationError("expected_version must be the document's 'version' (an integer).")
    issues_raw = body.get("qc_issues") or []
    if not isinstance(issues_raw, list) or not all(
            isinstance(i, dict) and isinstance(i.get("category"), str)
            and isinstance(i.get("comment"), str) for i in issues_raw):
        raise ValidationError("qc_issues must be a list of {category, comment} objects.")
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ValidationError("reason must be text.")
    action = body.get("action")
    if not isinstance(action, str):
        raise ValidationError("action must be one of: "
                              + ", ".join(a.value for a in Action) + ".")
    with command() as uow:
        docs.transition(uow, current_access(), document_id, action, expected_version=expected,
                        reason=reason,
                        issues=[docs.NewQcIssue(i["category"], i["comment"])
                                for i in issues_raw])
        index_after_commit(uow, services(), document_id)
        uow.commit()
    return jsonify(_document_with_versions(document_id))


register_path("/documents/{document_id}/versions/{number}/content", "get", {
    "summary": "Download the exact bytes of one version (hash-verified)",
    "operationId": "downloadVersion",
    "parameters": [_path_id("document_id"), _path_id("number")],
    "responses": {"200": {"description": "The file", "content": {
        mime: {"schema": {"type": "string", "format": "binary"}}
        for mime in sorted(ALLOWED_TYPES)}}}})


@bp.get("/documents/<int:document_id>/versions/<int:number>/content")
@api_auth
def download(document_id: int, number: int):  # type: ignore[no-untyped-def]
    doc = load_document(document_id)
    version = db_session().scalar(select(DocumentVersion).where(
        DocumentVersion.document_id == doc.id, DocumentVersion.number == number))
    if version is None:
        raise NotFound("There is no such version of this document.")
    from etmf.records.download import verified_download
    from etmf.web.documents import _ascii

    return verified_download(doc, version, actor=current_access().actor,
                             disposition="attachment", filename=_ascii(version.filename))


# --- browse and search -----------------------------------------------------------------------

register_path("/studies/{study_id}/tree", "get", {
    "summary": "The TMF tree: zone → section → artifact with counts by status",
    "operationId": "getTree", "parameters": [_path_id("study_id")],
    "responses": {"200": {"description": "Artifacts that hold documents", "content": {
        "application/json": {"schema": {"type": "object", "required": ["zones"],
                                        "properties": {"zones": {"type": "array"}}}}}}}})


@bp.get("/studies/<int:study_id>/tree")
@api_auth
def tree(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    scope = document_scope(study_id)  # the page's kept counts, scoped the same way
    counts: dict[str, dict[str, int]] = {}
    for _z, _s, artifact_id, status, n in tree_counts(
            db_session(), study_id, sites=scope.sites, statuses=scope.statuses,
            zones=scope.zones):
        counts.setdefault(artifact_id, {})[status] = n
    model = load_reference_model()
    zones = []
    for zone in model.zones:
        sections = []
        for section in model.sections_of(zone):
            artifacts = [{"unique_id": a.unique_id, "number": a.number, "name": a.name,
                          "counts": counts[a.unique_id]}
                         for a in model.artifacts_of(section) if a.unique_id in counts]
            if artifacts:
                sections.append({"number": section.number, "name": section.name,
                                 "artifacts": artifacts})
        if sections:
            zones.append({"number": zone.number, "name": zone.name, "sections": sections})
    return jsonify({"zones": zones})


register_path("/studies/{study_id}/documents", "get", {
    "summary": "The study's documents the user may see, newest document date first",
    "operationId": "listDocuments",
    "parameters": [_path_id("study_id"),
                   {"name": "artifact", "in": "query", "schema": {"type": "string"}},
                   {"name": "status", "in": "query", "schema": {"type": "string"}},
                   {"name": "limit", "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
                   {"name": "offset", "in": "query",
                    "schema": {"type": "integer", "minimum": 0, "maximum": 10**6}}],
    "responses": {"200": {"description": "A page of documents", "content": {
        "application/json": {"schema": {
            "type": "object", "required": ["total", "documents"],
            "properties": {"total": {"type": "integer"}, "documents": {
                "type": "array", "items": {"$ref": "#/components/schemas/Document"}}}}}}}}})


@bp.get("/studies/<int:study_id>/documents")
@api_auth
def list_documents(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    q = visible_documents(study_id)
    if request.args.get("artifact"):
        q = q.where(Document.artifact_id == request.args["artifact"])
    if request.args.get("status"):
        q = q.where(Document.status == request.args["status"])
    limit = min(max(_int(request.args.get("limit"), "limit") or 100, 1), 500)
    offset = min(max(_int(request.args.get("offset"), "offset") or 0, 0), 10**6)
    session = db_session()
    total = session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    rows = session.scalars(q.order_by(Document.document_date.is_(None),
                                      Document.document_date.desc(), Document.id.desc())
                           .limit(limit).offset(offset)).all()
    return jsonify({"total": total, "documents": [_doc_json(d) for d in rows]})


register_path("/search", "get", {
    "summary": "Full-text search over the documents the user may see",
    "operationId": "search",
    "parameters": [{"name": "q", "in": "query", "schema": {"type": "string",
                                                           "maxLength": 500}},
                   {"name": "study", "in": "query", "schema": _ID},
                   {"name": "limit", "in": "query",
                    "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
    "responses": {"200": {"description": "Hits with safe-HTML snippets", "content": {
        "application/json": {"schema": {
            "type": "object", "required": ["total", "timed_out", "hits", "facets"],
            "properties": {"total": {"type": "integer"}, "timed_out": {"type": "boolean"},
                           "total_estimated": {"type": "boolean",
                                               "description": "total and facets are estimates"},
                           "facets": {"type": "object"},
                           "hits": {"type": "array", "items": {
                               "type": "object",
                               "required": ["document_id", "title", "snippet_html"],
                               "properties": {"document_id": {"type": "integer"},
                                              "title": {"type": "string"},
                                              "snippet_html": {"type": "string"}}}}}}}}}}})


@bp.get("/search")
@api_auth
def search():  # type: ignore[no-untyped-def]
    from etmf.web.search import TIME_BUDGET_S

    study = _int(request.args.get("study"), "study")
    scope, allowed, _hidden = scope_for(current_access(), study)
    limit = min(max(_int(request.args.get("limit"), "limit") or 20, 1), 100)
    try:
        results = services().search.search(SearchQuery(
            text=request.args.get("q", "")[:500], scope=scope, statuses=allowed, limit=limit,
            zones=zones_for(current_access(), scope, None),
            time_budget_s=TIME_BUDGET_S))
    except SearchUnavailable as exc:
        raise ServiceUnavailable(f"Search is unavailable right now: {exc}") from None
    return jsonify({
        "total": results.total, "timed_out": results.timed_out, "facets": results.facets,
        "total_estimated": results.total_estimated,
        "hits": [{"document_id": h.document_id, "title": h.title,
                  "snippet_html": h.snippet_html} for h in results.hits]})
