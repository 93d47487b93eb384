"""The first API endpoints: who am I, my studies, one study. Each permission-checked."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from sqlalchemy import select

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.api import api_auth, bp
from etmf.api.openapi import register_path, register_schema
from etmf.errors import NotFound
from etmf.studies.models import Study
from etmf.web import db_session

register_schema("Grant", {
    "type": "object", "required": ["study_id", "site_id", "role"],
    "properties": {"study_id": {"type": "integer"},
                   "site_id": {"type": "integer", "nullable": True},
                   "role": {"type": "string"}}})
register_schema("Me", {
    "type": "object", "required": ["id", "email", "full_name", "is_admin", "read_only",
                                   "grants"],
    "properties": {"id": {"type": "integer"}, "email": {"type": "string"},
                   "full_name": {"type": "string"}, "is_admin": {"type": "boolean"},
                   "read_only": {"type": "boolean"},
                   "grants": {"type": "array", "items": {"$ref": "#/components/schemas/Grant"}}}})
register_schema("Site", {
    "type": "object", "required": ["id", "number", "institution", "status"],
    "properties": {"id": {"type": "integer"}, "number": {"type": "string"},
                   "institution": {"type": "string"}, "status": {"type": "string"}}})
register_schema("Study", {
    "type": "object",
    "required": ["id", "protocol_number", "title", "phase", "sponsor", "status", "roles"],
    "properties": {"id": {"type": "integer"}, "protocol_number": {"type": "string"},
                   "title": {"type": "string"}, "phase": {"type": "string"},
                   "sponsor": {"type": "string"}, "status": {"type": "string"},
                   "roles": {"type": "array", "items": {"type": "string"}},
                   "sites": {"type": "array", "items": {"$ref": "#/components/schemas/Site"}}}})


def _json(ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


register_path("/me", "get", {
    "summary": "The signed-in user and their study roles", "operationId": "getMe",
    "responses": {"200": _json("Me", "The user")}})
register_path("/studies", "get", {
    "summary": "The studies the user has a part in", "operationId": "listStudies",
    "responses": {"200": {"description": "The studies", "content": {"application/json": {
        "schema": {"type": "object", "required": ["studies"], "properties": {"studies": {
            "type": "array", "items": {"$ref": "#/components/schemas/Study"}}}}}}}}})
register_path("/studies/{study_id}", "get", {
    "summary": "One study with the sites the user may see", "operationId": "getStudy",
    "parameters": [{"name": "study_id", "in": "path", "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}],
    "responses": {"200": _json("Study", "The study")}})


def _study_json(study: Study, roles: set[str]) -> dict[str, Any]:
    return {"id": study.id, "protocol_number": study.protocol_number, "title": study.title,
            "phase": study.phase, "sponsor": study.sponsor, "status": study.status,
            "roles": sorted(roles)}


@bp.get("/me")
@api_auth
def me():  # type: ignore[no-untyped-def]
    from flask_login import current_user

    access = current_access()
    return jsonify({
        "id": current_user.id, "email": current_user.email,
        "full_name": current_user.full_name, "is_admin": access.is_admin,
        "read_only": access.read_only,
        "grants": [{"study_id": g.study_id, "site_id": g.site_id, "role": g.role}
                   for g in access.grants],
    })


@bp.get("/studies")
@api_auth
def studies():  # type: ignore[no-untyped-def]
    access = current_access()
    ids = sorted(s for s in access.study_ids() if access.can(Permission.VIEW_STUDY, s))
    rows = db_session().scalars(select(Study).where(Study.id.in_(ids))
                                .order_by(Study.protocol_number)).all() if ids else []
    return jsonify({"studies": [_study_json(s, access.roles_in(s.id)) for s in rows]})


@bp.get("/studies/<int:study_id>")
@api_auth
def study(study_id: int):  # type: ignore[no-untyped-def]
    access = current_access()
    access.require(Permission.VIEW_STUDY, study_id)
    found = db_session().get(Study, study_id)
    if found is None:
        raise NotFound("There is no such study, or you have no access to it.")
    scope = access.site_scope(study_id)
    body = _study_json(found, access.roles_in(study_id))
    body["sites"] = [{"id": s.id, "number": s.number, "institution": s.institution,
                      "status": s.status}
                     for s in sorted(found.sites, key=lambda s: s.number)
                     if scope is None or s.id in scope]
    return jsonify(body)
