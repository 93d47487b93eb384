"""REST API for tracking (``/api/v1``): completeness of a study by zone, site, country and
milestone; documents expired or expiring; inspection readiness of a study or a site. The
figures are the dashboard's (same caches, same scoping to the user's sites and zones)."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request

from etmf.accounts.security import current_access
from etmf.api import api_auth, api_blueprint
from etmf.api.openapi import register_path, register_schema
from etmf.bootstrap import services
from etmf.errors import NotFound, ValidationError
from etmf.reference_model.model import load_reference_model
from etmf.tracking.expiry import WINDOWS, expiring_documents
from etmf.tracking.metrics import Completeness
from etmf.tracking.readiness import readiness as readiness_of
from etmf.web import db_session
from etmf.web.studies import load_study
from etmf.web.tracking import _places, figures_of

bp = api_blueprint("api_tracking", __name__)


_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_STUDY = {"name": "study_id", "in": "path", "required": True, "schema": _ID}
_SITE = {"name": "site", "in": "query", "schema": _ID,
         "description": "One site of the study (default: the whole study, or the first of "
                        "the user's sites when they are limited to some)"}


def _ok(name: str, description: str) -> dict[str, Any]:
    return {"200": {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}}


register_schema("CompletenessGroup", {
    "type": "object",
    "required": ["key", "label", "expected", "approved", "percent", "missing", "not_approved",
                 "overdue", "expired"],
    "properties": {
        "key": {"type": "string", "nullable": True,
                "description": "zone number, site id, country id or milestone code"},
        "label": {"type": "string"}, "expected": {"type": "integer"},
        "approved": {"type": "integer"},
        "percent": {"type": "integer", "description": "approved of expected, rounded down"},
        "missing": {"type": "integer"}, "not_approved": {"type": "integer"},
        "overdue": {"type": "integer"}, "expired": {"type": "integer"}}})
_GROUPS = {"type": "array", "items": {"$ref": "#/components/schemas/CompletenessGroup"}}
register_schema("Completeness", {
    "type": "object",
    "required": ["study_id", "study", "zones", "sites", "countries", "milestones",
                 "timeliness", "quality"],
    "properties": {
        "study_id": {"type": "integer"},
        "study": {"$ref": "#/components/schemas/CompletenessGroup"},
        "zones": _GROUPS, "sites": _GROUPS, "countries": _GROUPS, "milestones": _GROUPS,
        "timeliness": {"type": "object"}, "quality": {"type": "object"}}})
register_schema("Expiring", {
    "type": "object", "required": ["window", "documents"],
    "properties": {"window": {"type": "string"}, "documents": {"type": "array", "items": {
        "type": "object",
        "required": ["document_id", "title", "artifact_number", "site_id", "expires_on",
                     "days_left"],
        "properties": {"document_id": {"type": "integer"}, "title": {"type": "string"},
                       "artifact_number": {"type": "string"},
                       "site_id": {"type": "integer", "nullable": True},
                       "person": {"type": "string", "nullable": True},
                       "expires_on": {"type": "string", "format": "date"},
                       "days_left": {"type": "integer"}}}}}})
_ENTRIES = {"type": "array", "items": {"type": "object", "properties": {
    "entry_id": {"type": "integer"}, "artifact_number": {"type": "string"},
    "artifact_name": {"type": "string"}, "level": {"type": "string"},
    "site_id": {"type": "integer", "nullable": True},
    "country_id": {"type": "integer", "nullable": True},
    "required": {"type": "integer"}, "approved": {"type": "integer"},
    "filed": {"type": "integer"}}}}
_IDS = {"type": "array", "items": {"type": "integer"}}
register_schema("Readiness", {
    "type": "object",
    "required": ["study_id", "site_id", "ready", "missing", "not_approved", "expired",
                 "pending_qc", "unsigned", "open_issues"],
    "properties": {
        "study_id": {"type": "integer"}, "site_id": {"type": "integer", "nullable": True},
        "ready": {"type": "boolean"}, "missing": _ENTRIES, "not_approved": _ENTRIES,
        "expired": _ENTRIES, "pending_qc": _IDS, "unsigned": _IDS,
        "open_issues": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "document_id": {"type": "integer"}}}}}})


def _group(g: Completeness) -> dict[str, Any]:
    return {"key": None if g.key is None else str(g.key), "label": g.label,
            "expected": g.expected, "approved": g.approved, "percent": g.percent,
            "missing": g.missing, "not_approved": g.not_approved, "overdue": g.overdue,
            "expired": g.expired}


register_path("/studies/{study_id}/completeness", "get", {
    "summary": "Completeness, overdue and expired expected documents by study, zone, site, "
               "country and milestone, with timeliness and quality (the dashboard's figures)",
    "operationId": "getCompleteness", "parameters": [_STUDY],
    "responses": _ok("Completeness", "The study's figures, limited to the user's sites")})


@bp.get("/studies/<int:study_id>/completeness")
@api_auth
def completeness(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    found, _targets = figures_of(study_id)
    groups = found.groups
    total = groups["study"][0] if groups["study"] else Completeness("study", "Study")
    t, q = found.timeliness, found.quality
    return jsonify({
        "study_id": study_id, "study": _group(total),
        "zones": [_group(g) for g in sorted(groups["zone"], key=lambda g: str(g.key))],
        "sites": [_group(g) for g in sorted(
            (g for g in groups["site"] if g.key is not None), key=lambda g: g.label)],
        "countries": [_group(g) for g in sorted(
            (g for g in groups["country"] if g.key is not None), key=lambda g: g.label)],
        "milestones": [_group(g) for g in sorted(groups["milestone"],
                                                 key=lambda g: str(g.key) or "99")],
        "timeliness": {"filed": t.filed, "filed_on_time": t.filed_on_time,
                       "mean_filing_days": t.mean_filing_days, "filing_target": t.filing_target,
                       "approved": t.approved, "approved_on_time": t.approved_on_time,
                       "mean_approval_days": t.mean_approval_days,
                       "approval_target": t.approval_target},
        "quality": {"rejections": q.rejections, "approvals": q.approvals,
                    "rejection_percent": q.rejection_percent, "open_issues": q.open_issues}})


register_path("/studies/{study_id}/expiring", "get", {
    "summary": "Approved documents that expired, or expire within 30, 60, 90 or 120 days",
    "operationId": "listExpiring",
    "parameters": [_STUDY, {"name": "window", "in": "query", "schema": {
        "type": "string", "enum": ["expired", *(str(d) for d in WINDOWS)], "default": "30"}}],
    "responses": _ok("Expiring", "Soonest first")})


@bp.get("/studies/<int:study_id>/expiring")
@api_auth
def expiring(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    window = request.args.get("window", "30")
    if window != "expired" and window not in {str(d) for d in WINDOWS}:
        raise ValidationError(f"window must be expired or one of {', '.join(map(str, WINDOWS))}.")
    expired = window == "expired"
    found = expiring_documents(db_session(), study_id, services().clock.now().date(),
                               within_days=None if expired else int(window), expired=expired,
                               site_ids=current_access().site_scope(study_id))
    return jsonify({"window": window, "documents": [{
        "document_id": e.document_id, "title": e.title, "artifact_number": e.artifact_number,
        "site_id": e.site_id, "person": e.person, "expires_on": e.expires_on.isoformat(),
        "days_left": e.days_left} for e in found]})


register_path("/studies/{study_id}/readiness", "get", {
    "summary": "Inspection readiness of a study or one site: missing, not approved and "
               "expired expected documents, documents pending QC, unsigned, open QC issues",
    "operationId": "getReadiness", "parameters": [_STUDY, _SITE],
    "responses": _ok("Readiness", "Every open point, by kind")})


@bp.get("/studies/<int:study_id>/readiness")
@api_auth
def readiness(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    raw = request.args.get("site", "").strip()
    if raw and not raw.isdigit():
        raise ValidationError("site must be the id of a site of the study.")
    site_id = int(raw) if raw else None
    scope = current_access().site_scope(study_id)
    if scope is not None and site_id not in scope:
        site_id = min(scope) if scope else None
    sites, _countries = _places(study_id)
    if site_id is not None and site_id not in sites:
        raise NotFound("There is no such site in this study.")
    r = readiness_of(db_session(), study_id, services().clock.now().date(), site_id=site_id)
    model = load_reference_model()

    def entries(states):  # type: ignore[no-untyped-def]
        return [{"entry_id": s.entry.id,
                 "artifact_number": model.artifact(s.entry.artifact_id).number,
                 "artifact_name": model.artifact(s.entry.artifact_id).name,
                 "level": s.entry.level, "site_id": s.entry.site_id,
                 "country_id": s.entry.country_id, "required": s.entry.required_count,
                 "approved": s.approved, "filed": s.filed} for s in states]

    return jsonify({
        "study_id": study_id, "site_id": site_id, "ready": r.ready,
        "missing": entries(r.missing), "not_approved": entries(r.not_approved),
        "expired": entries(r.expired), "pending_qc": [d.id for d in r.pending_qc],
        "unsigned": [d.id for d in r.unsigned],
        "open_issues": [{"id": i.id, "document_id": i.document_id} for i in r.open_issues]})
