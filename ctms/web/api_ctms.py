"""CTMS JSON API under /api/v1: sites with versions in force, subjects, enrollment forecast,
and recording a consent (checked against the ICF in force, like the page)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import jsonify, request
from sqlalchemy import select

from ctms.enrollment.services import study_enrollment
from ctms.studyplan.services import version_in_force
from ctms.subjects import services as subj
from ctms.subjects.models import Subject
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.api import api_auth, api_blueprint
from etmf.api.openapi import register_path, register_schema
from etmf.bootstrap import services
from etmf.errors import NotFound, ValidationError
from etmf.web import command, db_session
from etmf.web.studies import load_study

bp = api_blueprint("api_ctms", __name__)


_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_STUDY = [{"name": "study_id", "in": "path", "required": True, "schema": _ID}]
_DATE = {"type": "string", "format": "date", "nullable": True}


def _ok(name: str, description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}}


register_schema("CtmsSite", {
    "type": "object",
    "required": ["id", "number", "institution", "status", "activated_on", "protocol_in_force",
                 "icf_in_force", "enrolled", "target"],
    "properties": {"id": {"type": "integer"}, "number": {"type": "string"},
                   "institution": {"type": "string"}, "status": {"type": "string"},
                   "activated_on": _DATE,
                   "protocol_in_force": {"type": "string", "nullable": True},
                   "icf_in_force": {"type": "string", "nullable": True},
                   "enrolled": {"type": "integer"},
                   "target": {"type": "integer", "nullable": True}}})
register_schema("CtmsSiteList", {"type": "object", "required": ["on", "sites"], "properties": {
    "on": {"type": "string", "format": "date"},
    "sites": {"type": "array", "items": {"$ref": "#/components/schemas/CtmsSite"}}}})
register_schema("CtmsSubject", {
    "type": "object",
    "required": ["id", "number", "site_id", "status", "screened_on", "enrolled_on",
                 "needs_reconsent_on"],
    "properties": {"id": {"type": "integer"}, "number": {"type": "string"},
                   "site_id": {"type": "integer"}, "status": {"type": "string"},
                   "screened_on": {"type": "string", "format": "date"},
                   "enrolled_on": _DATE,
                   "needs_reconsent_on": {"type": "string", "nullable": True}}})
register_schema("CtmsSubjectList", {"type": "object", "required": ["subjects"], "properties": {
    "subjects": {"type": "array", "items": {"$ref": "#/components/schemas/CtmsSubject"}}}})
register_schema("CtmsEnrollment", {
    "type": "object", "required": ["target", "enrolled", "forecast"],
    "properties": {"target": {"type": "integer", "nullable": True},
                   "enrolled": {"type": "integer"},
                   "forecast": {"type": "object", "nullable": True, "properties": {
                       "expected": _DATE, "early": _DATE, "late": _DATE,
                       "rate_per_30_days": {"type": "string"}}}}})
register_schema("CtmsConsent", {"type": "object", "required": ["consent_id"],
                                "properties": {"consent_id": {"type": "integer"}}})


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


register_path("/studies/{study_id}/ctms/sites", "get", {
    "summary": "Sites with status, protocol and ICF versions in force today, and enrollment",
    "operationId": "ctmsSites", "parameters": _STUDY,
    "responses": _ok("CtmsSiteList", "The sites the user may see")})


@bp.get("/studies/<int:study_id>/ctms/sites")
@api_auth
def sites(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    session = db_session()
    today = services().clock.now().date()
    enrollment = study_enrollment(session, study_id, today,
                                  current_access().site_scope(study_id))
    rows = []
    for row in enrollment.sites:
        s = row.site
        protocol = version_in_force(session, s.id, "protocol", today)
        icf = version_in_force(session, s.id, "icf", today)
        rows.append({"id": s.id, "number": s.number, "institution": s.institution,
                     "status": s.status, "activated_on": _iso(s.activated_on),
                     "protocol_in_force": protocol.label if protocol else None,
                     "icf_in_force": icf.label if icf else None,
                     "enrolled": len(row.enrolled_dates), "target": row.target})
    return jsonify({"on": today.isoformat(), "sites": rows})


register_path("/studies/{study_id}/ctms/subjects", "get", {
    "summary": "Subjects of the sites the user may see", "operationId": "ctmsSubjects",
    "parameters": _STUDY, "responses": _ok("CtmsSubjectList", "The subjects")})


@bp.get("/studies/<int:study_id>/ctms/subjects")
@api_auth
def subjects(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    session = db_session()
    today = services().clock.now().date()
    q = select(Subject).where(Subject.study_id == study_id).order_by(Subject.number)
    scope = current_access().site_scope(study_id)
    if scope is not None:
        q = q.where(Subject.site_id.in_(scope))
    out = []
    for s in session.scalars(q):
        again = subj.needs_reconsent(session, s, today)
        out.append({"id": s.id, "number": s.number, "site_id": s.site_id, "status": s.status,
                    "screened_on": s.screened_on.isoformat(), "enrolled_on": _iso(s.enrolled_on),
                    "needs_reconsent_on": again.label if again else None})
    return jsonify({"subjects": out})


register_path("/studies/{study_id}/ctms/enrollment", "get", {
    "summary": "Enrollment against the planned target, with the forecast date and its band",
    "operationId": "ctmsEnrollment", "parameters": _STUDY,
    "responses": _ok("CtmsEnrollment", "Enrollment and forecast")})


@bp.get("/studies/<int:study_id>/ctms/enrollment")
@api_auth
def enrollment(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    today = services().clock.now().date()
    e = study_enrollment(db_session(), study_id, today, current_access().site_scope(study_id))
    fc = e.forecast
    return jsonify({"target": e.target, "enrolled": len(e.enrolled_dates), "forecast": None
                    if fc is None else {"expected": _iso(fc.expected), "early": _iso(fc.early),
                                        "late": _iso(fc.late),
                                        "rate_per_30_days": f"{fc.rate_per_day * 30:.2f}"}})


register_path("/studies/{study_id}/ctms/consents", "post", {
    "summary": "Record a subject's informed consent; refused unless that ICF version was "
               "approved and in force at the subject's site on the consent date",
    "operationId": "ctmsRecordConsent", "parameters": _STUDY,
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["subject_id", "icf_version_id", "consented_on"],
        "properties": {"subject_id": _ID, "icf_version_id": _ID,
                       "consented_on": {"type": "string", "format": "date"}}}}}},
    "responses": _ok("CtmsConsent", "The consent is recorded", "201")})


@bp.post("/studies/<int:study_id>/ctms/consents")
@api_auth
def record_consent(study_id: int):  # type: ignore[no-untyped-def]
    current_access().require(Permission.MANAGE_SUBJECTS, study_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError("Send a JSON object with subject_id, icf_version_id and "
                              "consented_on.")
    subject_id, icf_id = body.get("subject_id"), body.get("icf_version_id")
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31
               for v in (subject_id, icf_id)):
        raise ValidationError("subject_id and icf_version_id must be positive integers.")
    try:
        on = date.fromisoformat(str(body.get("consented_on")))
    except ValueError:
        raise ValidationError("consented_on must be a date (YYYY-MM-DD).") from None
    subject = db_session().get(Subject, subject_id)
    if subject is None or subject.study_id != study_id:
        raise NotFound("There is no such subject in this study.")
    with command() as uow:
        consent_id = subj.record_consent(uow, current_access(), subject.id,
                                         icf_version_id=icf_id, consented_on=on)  # type: ignore[arg-type]
        uow.commit()
    return jsonify({"consent_id": consent_id}), 201
