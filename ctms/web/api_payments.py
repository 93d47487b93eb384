"""CTMS JSON API for site payments and EDC import, under /api/v1.

Amounts are decimal text in the site's currency (never JSON numbers with a fraction).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import select

from ctms.edc import services as edc_svc
from ctms.edc.odm import MAX_BYTES
from ctms.payments import exports, money
from ctms.payments import services as pay
from ctms.payments.models import PaymentBatch
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.api import api_auth, api_blueprint
from etmf.api.openapi import register_path, register_schema
from etmf.errors import NotFound, ValidationError
from etmf.studies.models import Site
from etmf.web import command, db_session
from etmf.web.studies import load_study

bp = api_blueprint("api_ctms_payments", __name__)



_ID = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
_STUDY = [{"name": "study_id", "in": "path", "required": True, "schema": _ID}]
_AMOUNT = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$"}


def _ok(name: str, description: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{name}"}}}}}


register_schema("CtmsSitePayments", {
    "type": "object",
    "required": ["site_id", "site", "currency", "accrued", "unbilled", "in_batches", "paid",
                 "holdback"],
    "properties": {"site_id": {"type": "integer"}, "site": {"type": "string"},
                   "currency": {"type": "string", "nullable": True}, "accrued": _AMOUNT,
                   "unbilled": _AMOUNT, "in_batches": _AMOUNT, "paid": _AMOUNT,
                   "holdback": _AMOUNT}})
register_schema("CtmsPaymentBatch", {
    "type": "object", "required": ["id", "number", "status", "period_end", "items"],
    "properties": {"id": {"type": "integer"}, "number": {"type": "integer"},
                   "status": {"type": "string", "enum": list(pay.BATCH_STATUSES)},
                   "period_end": {"type": "string", "format": "date"},
                   "items": {"type": "array", "items": {"type": "object", "properties": {
                       "site_id": {"type": "integer"}, "currency": {"type": "string"},
                       "gross": _AMOUNT, "holdback": _AMOUNT, "net": _AMOUNT,
                       "paid": {**_AMOUNT, "nullable": True}}}}}})
register_schema("CtmsPayments", {
    "type": "object", "required": ["sites", "discrepancies", "batches"],
    "properties": {
        "sites": {"type": "array", "items": {"$ref": "#/components/schemas/CtmsSitePayments"}},
        "discrepancies": {"type": "array", "items": {"type": "object", "properties": {
            "site_id": {"type": "integer"}, "kind": {"type": "string"},
            "message": {"type": "string"}}}},
        "batches": {"type": "array", "items": {"$ref": "#/components/schemas/CtmsPaymentBatch"}},
    }})
register_schema("CtmsEdcReport", {
    "type": "object", "required": ["dry_run", "imported", "changes", "problems"],
    "properties": {"filename": {"type": "string"}, "sha256": {"type": "string"},
                   "dry_run": {"type": "boolean"}, "imported": {"type": "boolean"},
                   "subjects": {"type": "integer"}, "unchanged": {"type": "integer"},
                   "changes": {"type": "array", "items": {"type": "object", "properties": {
                       "subject": {"type": "string"}, "change": {"type": "string"}}}},
                   "problems": {"type": "array", "items": {"type": "object", "properties": {
                       "kind": {"type": "string"}, "subject": {"type": "string",
                                                               "nullable": True},
                       "message": {"type": "string"}}}}}})


def _sites(study_id: int) -> list[Site]:
    scope = current_access().site_scope(study_id)
    return [s for s in db_session().scalars(select(Site).where(Site.study_id == study_id)
                                            .order_by(Site.number))
            if scope is None or s.id in scope]


def _batch_json(batch: PaymentBatch) -> dict[str, Any]:
    _b, items, _lines = pay.batch_detail(db_session(), current_access(), batch.id)
    return {"id": batch.id, "number": batch.number, "status": batch.status,
            "period_end": batch.period_end.isoformat(),
            "items": [{"site_id": i.site_id, "currency": i.currency,
                       "gross": money.to_text(i.gross, i.currency),
                       "holdback": money.to_text(i.holdback, i.currency),
                       "net": money.to_text(i.net, i.currency),
                       "paid": None if i.paid_amount is None
                       else money.to_text(i.paid_amount, i.currency)} for i in items]}


register_path("/studies/{study_id}/ctms/payments", "get", {
    "summary": "Per site: accrued, unbilled, in batches, paid and holdback; discrepancies; "
               "payment batches", "operationId": "ctmsPayments", "parameters": _STUDY,
    "responses": _ok("CtmsPayments", "The study's payments")})


@bp.get("/studies/<int:study_id>/ctms/payments")
@api_auth
def payments(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.MANAGE_PAYMENTS, study_id)
    session = db_session()
    sites = _sites(study_id)
    read = pay.books(session, sites)
    rows = []
    for r in pay.study_summary(session, study_id, sites, read):
        cur = r.contract.currency if r.contract else "EUR"
        rows.append({"site_id": r.site.id, "site": r.site.number,
                     "currency": r.contract.currency if r.contract else None,
                     **{k: money.to_text(getattr(r, k), cur)
                        for k in ("accrued", "unbilled", "in_batches", "paid", "holdback")}})
    return jsonify({"sites": rows,
                    "discrepancies": [{"site_id": d.site_id, "kind": d.kind,
                                       "message": d.message}
                                      for d in pay.discrepancies(session, sites, read)],
                    "batches": [_batch_json(b) for b in pay.batches(session, study_id)]})


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ValidationError("Send a JSON object.")
    return body


def _batch_of(study_id: int, body: dict[str, Any]) -> PaymentBatch:
    batch_id = body.get("batch_id")
    if not (isinstance(batch_id, int) and not isinstance(batch_id, bool)
            and 0 < batch_id < 2**31):
        raise ValidationError("batch_id must be a positive integer.")
    batch = db_session().get(PaymentBatch, batch_id)
    if batch is None or batch.study_id != study_id:
        raise NotFound("There is no such payment batch in this study.")
    return batch


register_path("/studies/{study_id}/ctms/payment-batches", "post", {
    "summary": "Create a draft payment batch of every site's unbilled accruals up to a date",
    "operationId": "ctmsCreatePaymentBatch", "parameters": _STUDY,
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"until": {"type": "string", "format": "date"}}}}}},
    "responses": _ok("CtmsPaymentBatch", "The draft batch", "201")})


@bp.post("/studies/<int:study_id>/ctms/payment-batches")
@api_auth
def create_batch(study_id: int):  # type: ignore[no-untyped-def]
    current_access().require(Permission.MANAGE_PAYMENTS, study_id)
    body = request.get_json(silent=True) or {}
    until = None
    if isinstance(body, dict) and body.get("until"):
        try:
            until = date.fromisoformat(str(body["until"]))
        except ValueError:
            raise ValidationError("until must be a date (YYYY-MM-DD).") from None
    with command() as uow:
        batch_id = pay.create_batch(uow, current_access(), study_id, until=until)
        uow.commit()
    batch = db_session().get(PaymentBatch, batch_id)
    assert batch is not None
    return jsonify(_batch_json(batch)), 201


register_path("/studies/{study_id}/ctms/payment-batches/approve", "post", {
    "summary": "Approve a draft payment batch (study manager)",
    "operationId": "ctmsApprovePaymentBatch", "parameters": _STUDY,
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["batch_id"], "properties": {"batch_id": _ID}}}}},
    "responses": _ok("CtmsPaymentBatch", "The approved batch")})


@bp.post("/studies/<int:study_id>/ctms/payment-batches/approve")
@api_auth
def approve_batch(study_id: int):  # type: ignore[no-untyped-def]
    current_access().require(Permission.MANAGE_PAYMENTS, study_id)
    batch = _batch_of(study_id, _body())
    with command() as uow:
        pay.approve_batch(uow, current_access(), batch.id)
        uow.commit()
    db_session().rollback()  # end the read transaction that saw the batch as a draft
    fresh = db_session().get(PaymentBatch, batch.id)
    assert fresh is not None
    return jsonify(_batch_json(fresh))


register_path("/studies/{study_id}/ctms/payment-batches/export", "post", {
    "summary": "The payment file of an approved batch: CSV, or ISO 20022 pain.001.001.03 "
               "(needs the paying account); marks the batch exported",
    "operationId": "ctmsExportPaymentBatch", "parameters": _STUDY,
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["batch_id", "format"], "properties": {
            "batch_id": _ID, "format": {"type": "string", "enum": list(exports.FORMATS)},
            "execution_date": {"type": "string", "format": "date"},
            "debtor": {"type": "object", "properties": {
                "name": {"type": "string"}, "iban": {"type": "string"},
                "bic": {"type": "string"}}}}}}}},
    "responses": {"200": {"description": "The file", "content": {
        "text/csv": {"schema": {"type": "string"}},
        "application/xml": {"schema": {"type": "string"}}}}}})


@bp.post("/studies/<int:study_id>/ctms/payment-batches/export")
@api_auth
def export_batch(study_id: int):  # type: ignore[no-untyped-def]
    current_access().require(Permission.MANAGE_PAYMENTS, study_id)
    body = _body()
    batch = _batch_of(study_id, body)
    d = body.get("debtor") if isinstance(body.get("debtor"), dict) else None
    debtor = exports.Debtor(str(d.get("name", "")), str(d.get("iban", "")),
                            str(d.get("bic", ""))) if d else None
    execution = None
    if body.get("execution_date"):
        try:
            execution = date.fromisoformat(str(body["execution_date"]))
        except ValueError:
            raise ValidationError("execution_date must be a date (YYYY-MM-DD).") from None
    with command() as uow:
        data, mime, name = exports.export_batch(uow, current_access(), batch.id,
                                                str(body.get("format", "")), debtor=debtor,
                                                execution=execution)
        uow.commit()
    return Response(data, mimetype=mime,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


register_path("/studies/{study_id}/ctms/edc-imports", "post", {
    "summary": "Dry-run (default) or import CDISC ODM 1.3 clinical data: subject status and "
               "visit completion; unknown subjects, events and malformed dates are listed",
    "operationId": "ctmsEdcImport",
    "parameters": [*_STUDY, {"name": "dry_run", "in": "query", "required": False,
                             "schema": {"type": "boolean", "default": True}}],
    "requestBody": {"required": True, "content": {"application/xml": {"schema": {
        "type": "string", "maxLength": MAX_BYTES}}}},
    "responses": _ok("CtmsEdcReport", "What changed (or would change) and what is unknown")})


@bp.post("/studies/<int:study_id>/ctms/edc-imports")
@api_auth
def edc_import(study_id: int):  # type: ignore[no-untyped-def]
    current_access().require(Permission.MANAGE_SUBJECTS, study_id)
    dry_run = request.args.get("dry_run", "true").lower() not in ("false", "0", "no")
    data = request.stream.read(MAX_BYTES + 1)
    with command() as uow:
        report = edc_svc.import_odm(uow, current_access(), study_id, data,
                                    filename="api-upload.xml", dry_run=dry_run,
                                    report_unreadable=True)
        if report.imported:
            uow.commit()
    return jsonify(report.as_dict())
