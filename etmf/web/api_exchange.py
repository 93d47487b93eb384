"""REST API of the exchange and inspection areas (``/api/v1``): start an EMS export job and
follow it, dry-run an uploaded EMS package, list, raise and answer inspection requests.
Same services and permission checks as the pages; errors are JSON."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

from flask import current_app, jsonify, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.api import api_auth, api_blueprint
from etmf.api.openapi import register_path, register_schema
from etmf.errors import NotFound, ValidationError
from etmf.exchange import staging
from etmf.exchange.export import require_export
from etmf.exchange.importer import DryRunReport, dry_run
from etmf.inspection import services as inspection
from etmf.inspection.models import InspectionRequest
from etmf.web import command, db_session
from etmf.web.documents import _too_large
from etmf.web.studies import load_study

bp = api_blueprint("api_exchange", __name__)



bp.register_error_handler(RequestEntityTooLarge, _too_large)


_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def _path_id(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": _ID}


def _json(name: str, description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}}


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.data:
        return {}
    if not isinstance(body, dict):
        raise ValidationError("Send a JSON object.")
    return body


def _int_list(body: dict[str, Any], name: str) -> list[int]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise ValidationError(f"{name} must be a list of whole numbers.")
    return sorted(value)


def _str_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{name} must be a list of texts.")
    return sorted(value)


# --- EMS export as a background job ---------------------------------------------------------

register_schema("Job", {
    "type": "object", "required": ["id", "title", "status", "done", "job_url", "status_url"],
    "properties": {
        "id": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "string", "enum": ["queued", "running", "done", "failed"]},
        "status_label": {"type": "string"}, "done": {"type": "integer"},
        "total": {"type": "integer", "nullable": True},
        "percent": {"type": "integer", "nullable": True}, "message": {"type": "string"},
        "error": {"type": "string", "nullable": True},
        "download_url": {"type": "string", "nullable": True,
                         "description": "The result (signed-in session) once done"},
        "job_url": {"type": "string", "description": "The job's page, with a progress bar"},
        "status_url": {"type": "string", "description": "This resource"}}})


def _job_body(job: Any, study_id: int) -> dict[str, Any]:
    from etmf.web.jobs import job_json

    return {**job_json(job), "job_url": url_for("jobs.show", job_id=job.id),
            "status_url": url_for("api_exchange.export_job_status", study_id=study_id,
                                  job_id=job.id)}


register_path("/studies/{study_id}/exchange/export-jobs", "post", {
    "summary": "Start an EMS export of the study (or of some zones and sites) as a "
               "background job", "operationId": "startEmsExport",
    "parameters": [_path_id("study_id")],
    "requestBody": {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {
            "zones": {"type": "array", "items": {"type": "string"},
                      "description": "Zone numbers, e.g. \"01\"; none: every zone"},
            "site_ids": {"type": "array", "items": {"type": "integer"}}}}}}},
    "responses": _json("Job", "The job (queued, or already run)", "202")})


@bp.post("/studies/<int:study_id>/exchange/export-jobs")
@api_auth
def start_export_job(study_id: int):  # type: ignore[no-untyped-def]
    from etmf.jobs import get_job, submit

    load_study(study_id)
    access = current_access()
    require_export(access, study_id)
    body = _body()
    zones, site_ids = _str_list(body, "zones"), _int_list(body, "site_ids")
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    job_id = submit(app, "exchange.export", {"study_id": study_id, "zones": zones or None,
                                             "site_ids": site_ids or None},
                    actor=access.actor, study_id=study_id)
    response = jsonify(_job_body(get_job(app, job_id), study_id))
    response.status_code = 202
    response.headers["Location"] = url_for("api_exchange.export_job_status",
                                           study_id=study_id, job_id=job_id)
    return response


register_path("/studies/{study_id}/exchange/export-jobs/{job_id}", "get", {
    "summary": "How far an EMS export job has got", "operationId": "getEmsExportJob",
    "parameters": [_path_id("study_id"), {"name": "job_id", "in": "path", "required": True,
                                          "schema": {"type": "string"}}],
    "responses": _json("Job", "The job")})


@bp.get("/studies/<int:study_id>/exchange/export-jobs/<job_id>")
@api_auth
def export_job_status(study_id: int, job_id: str):  # type: ignore[no-untyped-def]
    from etmf.web.jobs import _visible_job

    load_study(study_id)
    require_export(current_access(), study_id)
    job = _visible_job(job_id)
    if job.study_id != study_id or job.kind != "exchange.export":
        raise NotFound("There is no such export job in this study.")
    return jsonify(_job_body(job, study_id))


# --- EMS dry run ---------------------------------------------------------------------------

register_schema("EmsDryRun", {
    "type": "object",
    "required": ["ok", "package_sha256", "schema_errors", "objects", "bad_files", "lines"],
    "properties": {
        "ok": {"type": "boolean", "description": "Ready to import as it is"},
        "fatal": {"type": "string", "nullable": True},
        "study": {"type": "string"}, "source": {"type": "string"},
        "transfer": {"type": "string"}, "package_sha256": {"type": "string"},
        "schema_errors": {"type": "array", "items": {"type": "string"}},
        "objects": {"type": "integer"}, "files": {"type": "integer"},
        "bad_files": {"type": "array", "items": {
            "type": "object", "properties": {"path": {"type": "string"},
                                             "object_id": {"type": "string"},
                                             "problem": {"type": "string"}}}},
        "object_problems": {"type": "array", "items": {"type": "string"}},
        "unknown_countries": {"type": "array", "items": {"type": "string"}},
        "unknown_sites": {"type": "array", "items": {"type": "string"}},
        "unknown_people": {"type": "array", "items": {"type": "string"}},
        "already_imported": {"type": "boolean"},
        "known_objects": {"type": "integer"},
        "lines": {"type": "array", "items": {"type": "string"},
                  "description": "The report in words, as the page shows it"}}})


def report_json(report: DryRunReport) -> dict[str, Any]:
    files = [f for o in report.objects for f in o.files]
    return {
        "ok": report.ok, "fatal": report.fatal, "study": report.study_id_text,
        "source": report.source_id, "transfer": report.transfer_id,
        "package_sha256": report.package_sha256, "schema_errors": report.schema_errors,
        "objects": len(report.objects), "files": len(files),
        "bad_files": [{"path": f.path, "object_id": f.object_id, "problem": f.problem}
                      for f in report.bad_files],
        "object_problems": [f"{o.object_id} v{o.version}: {p}" for o in report.objects
                            for p in o.problems],
        "unknown_countries": report.unknown_countries, "unknown_sites": report.unknown_sites,
        "unknown_people": report.unknown_people, "already_imported": report.already_imported,
        "known_objects": len(report.known_objects), "lines": report.lines()}


register_path("/studies/{study_id}/exchange/dry-run", "post", {
    "summary": "Check an EMS package (schema, checksums, artifacts, countries, sites, people) "
               "against the study without changing anything", "operationId": "dryRunEmsImport",
    "parameters": [_path_id("study_id")],
    "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "The EMS package (zip)"}}}}}},
    "responses": _json("EmsDryRun", "The dry run report")})


@bp.post("/studies/<int:study_id>/exchange/dry-run")
@api_auth
def dry_run_package(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.IMPORT_TMF, study_id)
    upload = request.files.get("file")
    if upload is None:
        raise ValidationError("Send the EMS package (a zip file) as the form field 'file'.")
    with tempfile.TemporaryFile() as spool:
        shutil.copyfileobj(upload.stream, spool, staging.CHUNK)
        report = dry_run(db_session(), spool, study_id)
    return jsonify(report_json(report))


# --- inspection requests -------------------------------------------------------------------

register_schema("InspectionRequest", {
    "type": "object",
    "required": ["id", "study_id", "kind", "subject", "text", "status", "raised_at",
                 "raised_by", "version"],
    "properties": {
        "id": {"type": "integer"}, "study_id": {"type": "integer"},
        "document_id": {"type": "integer", "nullable": True},
        "kind": {"type": "string", "enum": sorted(inspection.KINDS)},
        "subject": {"type": "string"}, "text": {"type": "string"},
        "status": {"type": "string", "enum": ["open", "answered"]},
        "raised_at": {"type": "string"}, "raised_by": {"type": "string"},
        "answer": {"type": "string", "nullable": True},
        "answer_document_id": {"type": "integer", "nullable": True},
        "answered_at": {"type": "string", "nullable": True},
        "answered_by": {"type": "string", "nullable": True},
        "version": {"type": "integer", "description": "Send as expected_version to answer"}}})


def request_json(r: InspectionRequest) -> dict[str, Any]:
    return {"id": r.id, "study_id": r.study_id, "document_id": r.document_id, "kind": r.kind,
            "subject": r.subject, "text": r.text, "status": r.status,
            "raised_at": r.raised_at.isoformat(), "raised_by": r.raised_by_name,
            "answer": r.answer, "answer_document_id": r.answer_document_id,
            "answered_at": r.answered_at.isoformat() if r.answered_at else None,
            "answered_by": r.answered_by_name, "version": r.version}


register_path("/studies/{study_id}/inspection-requests", "get", {
    "summary": "The inspection requests of a study, newest first",
    "operationId": "listInspectionRequests", "parameters": [_path_id("study_id")],
    "responses": {"200": {"description": "The requests", "content": {"application/json": {
        "schema": {"type": "object", "required": ["requests"], "properties": {
            "requests": {"type": "array", "items": {
                "$ref": "#/components/schemas/InspectionRequest"}}}}}}}}})


@bp.get("/studies/<int:study_id>/inspection-requests")
@api_auth
def list_requests(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.VIEW_STUDY, study_id)
    return jsonify({"requests": [request_json(r) for r in
                                 inspection.requests_of(db_session(), study_id)]})


register_path("/studies/{study_id}/inspection-requests", "post", {
    "summary": "An inspector asks the study team for a document or an explanation",
    "operationId": "raiseInspectionRequest", "parameters": [_path_id("study_id")],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["kind", "subject", "text"],
        "properties": {"kind": {"type": "string", "enum": sorted(inspection.KINDS)},
                       "subject": {"type": "string", "maxLength": 300},
                       "text": {"type": "string", "maxLength": 4000},
                       "document_id": {"type": "integer"}}}}}},
    "responses": _json("InspectionRequest", "The request raised", "201")})


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name, "")
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be text.")
    return value


def _optional_id(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValidationError(f"{name} must be a whole number.")
    return value


def _reload(request_id: int) -> InspectionRequest:
    db_session().rollback()  # see our own commit (SQLite WAL read transaction)
    row = db_session().get(InspectionRequest, request_id)
    assert row is not None
    return row


@bp.post("/studies/<int:study_id>/inspection-requests")
@api_auth
def raise_request(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    body = _body()
    with command() as uow:
        request_id = inspection.raise_request(uow, current_access(), inspection.NewRequest(
            study_id=study_id, kind=_text(body, "kind"), subject=_text(body, "subject"),
            text=_text(body, "text"), document_id=_optional_id(body, "document_id")))
        uow.commit()
    return jsonify(request_json(_reload(request_id))), 201


register_path("/inspection-requests/{request_id}/answer", "post", {
    "summary": "The study team answers an inspection request",
    "operationId": "answerInspectionRequest", "parameters": [_path_id("request_id")],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["answer", "expected_version"],
        "properties": {"answer": {"type": "string", "maxLength": 4000},
                       "expected_version": {"type": "integer"},
                       "document_id": {"type": "integer",
                                       "description": "The document provided, if any"}}}}}},
    "responses": _json("InspectionRequest", "The request, answered")})


@bp.post("/inspection-requests/<int:request_id>/answer")
@api_auth
def answer_request(request_id: int):  # type: ignore[no-untyped-def]
    row = db_session().get(InspectionRequest, request_id)
    access = current_access()
    if row is None or row.study_id not in access.study_ids():
        raise NotFound("There is no such inspection request.")
    body = _body()
    expected = _optional_id(body, "expected_version")
    if expected is None:
        raise ValidationError("expected_version must be the request's 'version' (an integer).")
    with command() as uow:
        inspection.answer_request(uow, access, request_id, _text(body, "answer"),
                                  expected_version=expected,
                                  document_id=_optional_id(body, "document_id"))
        uow.commit()
    return jsonify(request_json(_reload(request_id)))


