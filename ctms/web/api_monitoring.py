"""Monitoring JSON API under /api/v1: visits, what is overdue (next visit per site, visit
reports, action items), deviations (list and log), SAEs with their clock state, and the
key-risk-indicator heat map and trend."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import jsonify, request

from ctms.deviations import services as dev
from ctms.monitoring import services as mon
from ctms.risk.indicators import INDICATORS
from ctms.risk.services import heat_map
from ctms.safety import services as safety
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.api import api_auth, api_blueprint
from etmf.api.openapi import register_path, register_schema
from etmf.bootstrap import services
from etmf.errors import NotFound, ValidationError
from etmf.web import command, db_session
from etmf.web.studies import load_study

bp = api_blueprint("api_monitoring", __name__)


_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_STUDY = [{"name": "study_id", "in": "path", "required": True, "schema": _ID}]
_DATE = {"type": "string", "format": "date", "nullable": True}
_STR = {"type": "string", "nullable": True}


def _ok(name: str, description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}}


def _list(name: str, key: str, item: dict[str, Any]) -> None:
    register_schema(name, {"type": "object", "required": [key], "properties": {
        key: {"type": "array", "items": item}}})


def _iso(d: date | None) -> str | None:
    return d.isoformat() if d else None


def _scope(study_id: int) -> frozenset[int] | None:
    load_study(study_id)
    return current_access().site_scope(study_id)


_list("MonitoringVisitList", "visits", {"type": "object", "properties": {
    "id": {"type": "integer"}, "site_id": {"type": "integer"}, "kind": {"type": "string"},
    "mode": {"type": "string"}, "planned_on": _DATE, "visited_on": _DATE,
    "cra": {"type": "string"}, "status": {"type": "string"},
    "report_document_id": {"type": "integer", "nullable": True}, "report_due": _DATE,
    "letter_document_id": {"type": "integer", "nullable": True}}})
register_path("/studies/{study_id}/monitoring/visits", "get", {
    "summary": "Monitoring visits of the sites the user may see",
    "operationId": "monitoringVisits", "parameters": _STUDY,
    "responses": _ok("MonitoringVisitList", "The visits")})


@bp.get("/studies/<int:study_id>/monitoring/visits")
@api_auth
def visits(study_id: int):  # type: ignore[no-untyped-def]
    session = db_session()
    rows = mon.visits(session, study_id, _scope(study_id))
    return jsonify({"visits": [{
        "id": v.id, "site_id": v.site_id, "kind": v.kind, "mode": v.mode,
        "planned_on": _iso(v.planned_on), "visited_on": _iso(v.visited_on), "cra": v.cra_name,
        "status": v.status, "report_document_id": v.report_document_id,
        "report_due": _iso(mon.report_due(session, v)),
        "letter_document_id": v.letter_document_id} for v in rows]})


register_schema("MonitoringOverdue", {"type": "object", "required": [
    "on", "sites", "reports", "action_items"], "properties": {
    "on": {"type": "string", "format": "date"},
    "sites": {"type": "array", "items": {"type": "object", "properties": {
        "site_id": {"type": "integer"}, "number": {"type": "string"},
        "next_visit_due": _DATE, "because": {"type": "string"}}}},
    "reports": {"type": "array", "items": {"type": "object", "properties": {
        "visit_id": {"type": "integer"}, "site_id": {"type": "integer"},
        "visited_on": _DATE, "report_due": _DATE, "days_overdue": {"type": "integer"}}}},
    "action_items": {"type": "array", "items": {"type": "object", "properties": {
        "id": {"type": "integer"}, "visit_id": {"type": "integer"},
        "site_id": {"type": "integer"}, "description": {"type": "string"},
        "owner": {"type": "string"}, "due_on": _DATE,
        "days_overdue": {"type": "integer"}}}}}})
register_path("/studies/{study_id}/monitoring/overdue", "get", {
    "summary": "Next visit due per site, overdue visit reports and overdue action items",
    "operationId": "monitoringOverdue", "parameters": _STUDY,
    "responses": _ok("MonitoringOverdue", "What needs attention")})


@bp.get("/studies/<int:study_id>/monitoring/overdue")
@api_auth
def overdue(study_id: int):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from etmf.studies.models import Site

    scope = _scope(study_id)
    session = db_session()
    today = services().clock.now().date()
    sites = [s for s in session.scalars(select(Site).where(Site.study_id == study_id)
                                        .order_by(Site.number))
             if scope is None or s.id in scope]
    dues = mon.visits_due(session, sites)
    return jsonify({"on": today.isoformat(), "sites": [{
        "site_id": s.id, "number": s.number, "next_visit_due": _iso(dues[s.id].on),
        "because": dues[s.id].reason} for s in sites],
        "reports": [{"visit_id": v.id, "site_id": v.site_id, "visited_on": _iso(v.visited_on),
                     "report_due": _iso(d), "days_overdue": (today - d).days}
                    for v, d in mon.overdue_reports(session, study_id, today, scope)],
        "action_items": [{"id": a.id, "visit_id": a.visit_id, "site_id": a.site_id,
                          "description": a.description, "owner": a.owner,
                          "due_on": _iso(a.due_on), "days_overdue": (today - a.due_on).days}
                         for a in mon.overdue_items(session, study_id, today, scope)]})


_DEVIATION = {"type": "object", "properties": {
    "id": {"type": "integer"}, "site_id": {"type": "integer"},
    "subject_id": {"type": "integer", "nullable": True}, "category": {"type": "string"},
    "description": {"type": "string"}, "occurred_on": _DATE, "identified_on": _DATE,
    "important": {"type": "boolean"}, "capa": _STR, "status": {"type": "string"}}}
_list("DeviationList", "deviations", _DEVIATION)
register_schema("NewDeviation", {"type": "object", "required": [
    "site_id", "category", "description", "occurred_on", "identified_on"], "properties": {
    "site_id": _ID, "subject_id": _ID, "category": {"type": "string",
                                                    "enum": sorted(dev.CATEGORIES)},
    "description": {"type": "string"}, "occurred_on": {"type": "string", "format": "date"},
    "identified_on": {"type": "string", "format": "date"}, "important": {"type": "boolean"},
    "capa": {"type": "string"}}})
register_schema("DeviationCreated", {"type": "object", "required": ["deviation_id"],
                                     "properties": {"deviation_id": {"type": "integer"}}})
register_path("/studies/{study_id}/deviations", "get", {
    "summary": "Protocol deviations of the sites the user may see",
    "operationId": "deviations", "parameters": _STUDY,
    "responses": _ok("DeviationList", "The deviation log")})
register_path("/studies/{study_id}/deviations", "post", {
    "summary": "Log a protocol deviation", "operationId": "logDeviation",
    "parameters": _STUDY, "requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/NewDeviation"}}}},
    "responses": _ok("DeviationCreated", "Logged", "201")})


def _dev_json(d: Any) -> dict[str, Any]:
    return {"id": d.id, "site_id": d.site_id, "subject_id": d.subject_id,
            "category": d.category, "description": d.description,
            "occurred_on": _iso(d.occurred_on), "identified_on": _iso(d.identified_on),
            "important": d.important, "capa": d.capa, "status": d.status}


@bp.get("/studies/<int:study_id>/deviations")
@api_auth
def deviations(study_id: int):  # type: ignore[no-untyped-def]
    rows = dev.deviations(db_session(), study_id, _scope(study_id))
    return jsonify({"deviations": [_dev_json(d) for d in rows]})


def _date_of(body: dict[str, Any], key: str) -> date:
    try:
        return date.fromisoformat(str(body.get(key)))
    except ValueError:
        raise ValidationError(f"{key} must be a date (YYYY-MM-DD).") from None


@bp.post("/studies/<int:study_id>/deviations")
@api_auth
def log_deviation(study_id: int):  # type: ignore[no-untyped-def]
    current_access().require(Permission.RECORD_DEVIATIONS, study_id)
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError("Send a JSON object (see the NewDeviation schema).")
    site_id, subject_id = body.get("site_id"), body.get("subject_id")
    if not isinstance(site_id, int) or isinstance(site_id, bool) or not 0 < site_id < 2**31:
        raise ValidationError("site_id must be a positive integer.")
    if subject_id is not None and (not isinstance(subject_id, int) or isinstance(
            subject_id, bool) or not 0 < subject_id < 2**31):
        raise ValidationError("subject_id must be a positive integer or absent.")
    scope = _scope(study_id)
    from etmf.studies.models import Site

    site = db_session().get(Site, site_id)
    if site is None or site.study_id != study_id or (scope is not None and site_id not in scope):
        raise NotFound("There is no such site in this study.")
    with command() as uow:
        dev_id = dev.log_deviation(uow, current_access(), dev.NewDeviation(
            site_id=site_id, category=str(body.get("category", "")),
            description=str(body.get("description", "")),
            occurred_on=_date_of(body, "occurred_on"),
            identified_on=_date_of(body, "identified_on"),
            important=body.get("important") is True, capa=str(body.get("capa") or ""),
            subject_id=subject_id))
        uow.commit()
    return jsonify({"deviation_id": dev_id}), 201


_list("SaeList", "saes", {"type": "object", "properties": {
    "id": {"type": "integer"}, "site_id": {"type": "integer"}, "term": {"type": "string"},
    "fatal": {"type": "boolean"}, "life_threatening": {"type": "boolean"},
    "expected": {"type": "boolean"}, "awareness_on": _DATE,
    "clock_days": {"type": "integer", "nullable": True}, "due_on": _DATE,
    "submitted_on": _DATE, "state": {"type": "string"}, "late": {"type": "boolean"},
    "report_document_id": {"type": "integer", "nullable": True}}})
register_path("/studies/{study_id}/saes", "get", {
    "summary": "Serious adverse events with their reporting clock state",
    "operationId": "saes", "parameters": _STUDY, "responses": _ok("SaeList", "The SAEs")})


@bp.get("/studies/<int:study_id>/saes")
@api_auth
def saes(study_id: int):  # type: ignore[no-untyped-def]
    today = services().clock.now().date()
    rows = safety.saes(db_session(), study_id, _scope(study_id))
    return jsonify({"saes": [{
        "id": s.id, "site_id": s.site_id, "term": s.term, "fatal": s.fatal,
        "life_threatening": s.life_threatening, "expected": s.expected,
        "awareness_on": _iso(s.awareness_on), "clock_days": s.clock_days,
        "due_on": _iso(s.due_on), "submitted_on": _iso(s.submitted_on),
        "state": safety.clock_state(s, today), "late": safety.is_late(s, today),
        "report_document_id": s.report_document_id} for s in rows]})


register_schema("RiskHeatMap", {"type": "object", "required": ["on", "sites"], "properties": {
    "on": {"type": "string", "format": "date"},
    "sites": {"type": "array", "items": {"type": "object", "properties": {
        "site_id": {"type": "integer"}, "number": {"type": "string"},
        "indicators": {"type": "object", "additionalProperties": {
            "type": "object", "properties": {
                "value": {"type": "string", "nullable": True},
                "level": {"type": "string", "enum": ["green", "amber", "red", "none"]},
                "detail": {"type": "string"}}}}}}}}})
register_path("/studies/{study_id}/risk", "get", {
    "summary": "Key risk indicators per site (values as decimal strings, level, detail)",
    "operationId": "riskHeatMap", "parameters": _STUDY,
    "responses": _ok("RiskHeatMap", "The heat map")})


@bp.get("/studies/<int:study_id>/risk")
@api_auth
def risk(study_id: int):  # type: ignore[no-untyped-def]
    scope = _scope(study_id)
    current_access().require(Permission.VIEW_RISK, study_id)
    today = services().clock.now().date()
    rows = heat_map(db_session(), study_id, today, scope)
    return jsonify({"on": today.isoformat(), "sites": [{
        "site_id": r.site.id, "number": r.site.number, "indicators": {
            i.code: {"value": None if r.cells[i.code].value is None
                     else str(r.cells[i.code].value),
                     "level": r.cells[i.code].level, "detail": r.cells[i.code].detail}
            for i in INDICATORS}} for r in rows]})


register_schema("RiskTrend", {"type": "object", "required": ["indicator", "days", "sites"],
                              "properties": {
    "indicator": {"type": "string"}, "unit": {"type": "string"},
    "days": {"type": "array", "items": {"type": "string", "format": "date"}},
    "sites": {"type": "array", "items": {"type": "object", "properties": {
        "site_id": {"type": "integer"}, "number": {"type": "string"},
        "values": {"type": "array", "items": {"type": "string", "nullable": True}}}}}}})
register_path("/studies/{study_id}/risk/trend", "get", {
    "summary": "Daily snapshots of one indicator (or the count of red indicators) per site",
    "operationId": "riskTrend", "parameters": _STUDY + [
        {"name": "indicator", "in": "query", "required": False, "schema": {
            "type": "string", "enum": ["red_count"] + [i.code for i in INDICATORS]}},
        {"name": "days", "in": "query", "required": False,
         "schema": {"type": "integer", "minimum": 1, "maximum": 366}}],
    "responses": _ok("RiskTrend", "One value per site and day (null: no snapshot or data)")})


@bp.get("/studies/<int:study_id>/risk/trend")
@api_auth
def risk_trend(study_id: int):  # type: ignore[no-untyped-def]
    from ctms.risk.trend import RED_COUNT, trend

    scope = _scope(study_id)
    current_access().require(Permission.VIEW_RISK, study_id)
    days = request.args.get("days", 30, type=int)
    if not 1 <= days <= 366:
        raise ValidationError("days must be 1 to 366.")
    t = trend(db_session(), study_id, services().clock.now().date(),
              indicator=request.args.get("indicator", RED_COUNT), days=days, site_ids=scope)
    return jsonify({"indicator": t.indicator, "unit": t.unit,
                    "days": [d.isoformat() for d in t.days],
                    "sites": [{"site_id": x.site.id, "number": x.site.number,
                               "values": [None if v is None else str(v) for v in x.values]}
                              for x in t.series]})
