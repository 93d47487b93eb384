"""Site payment pages: contracts, what each site has accrued and been paid, discrepancies,
payment batches (create, approve, export, record payments) and their invoices and receipts.

Payments are for study managers (``Permission.MANAGE_PAYMENTS``). A refusal the user can act
on comes back on the page as a message; permission refusals stay 403/404.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_security import auth_required
from sqlalchemy import select

from ctms.payments import exports, money
from ctms.payments import services as pay
from ctms.payments.accruals import MILESTONES
from ctms.payments.models import PaymentItem
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.documents.upload import receive_file
from etmf.errors import Conflict, InvalidTransition, NotFound, ValidationError
from etmf.studies.models import Site
from etmf.web import command, db_session
from etmf.web.documents import parse_date
from etmf.web.studies import load_study

bp = Blueprint("ctms_payments", __name__, url_prefix="/ctms")

_SHOWN = (ValidationError, InvalidTransition, Conflict, NotFound)


def _visible_sites(study_id: int) -> list[Site]:
    scope = current_access().site_scope(study_id)
    rows = db_session().scalars(select(Site).where(Site.study_id == study_id)
                                .order_by(Site.number)).all()
    return [s for s in rows if scope is None or s.id in scope]


def _int(name: str, label: str) -> int:
    value = request.form.get(name, "").strip()
    if not value.isdigit() or len(value) > 9:
        raise ValidationError(f"{label} must be a whole number.")
    return int(value)


def parse_rates(text: str) -> list[pay.RateSpec]:
    """One rate a line: ``visit V2 350.00``, ``procedure ECG@V2 75.00 12-lead ECG``,
    ``milestone site_activation 1000.00``."""
    rates = []
    for n, line in enumerate(text.splitlines(), 1):
        parts = line.split(None, 3)
        if not parts:
            continue
        if len(parts) < 3:
            raise ValidationError(f"Rate line {n} needs a kind, a code and an amount "
                                  "(e.g. 'visit V2 350.00').")
        kind, code, amount = parts[0].lower(), parts[1], parts[2]
        visit_code = ""
        if kind == "procedure":
            code, _, visit_code = code.partition("@")
        rates.append(pay.RateSpec(kind, code, amount, parts[3] if len(parts) > 3 else "",
                                  visit_code))
    return rates


def rates_text(site_id: int, read: pay.Books) -> str:
    lines = []
    contract = read.contracts.get(site_id)
    for r in read.rates.get(site_id, []):
        code = f"{r.code}@{r.visit_code}" if r.kind == "procedure" else r.code
        amount = money.to_text(r.amount, contract.currency if contract else "EUR")
        lines.append(f"{r.kind} {code} {amount}" + (f" {r.label}" if r.label != r.code
                                                    and r.kind != "milestone" else ""))
    return "\n".join(lines)


def _form(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A POST handler: payments permission first, then the command; refusals flash."""

    @wraps(fn)
    def view(study_id: int):  # type: ignore[no-untyped-def]
        current_access().require(Permission.MANAGE_PAYMENTS, study_id)
        batch = request.form.get("batch_id", "").strip()
        try:
            with command() as uow:
                message, batch_id = fn(uow, study_id)
                uow.commit()
        except _SHOWN as refused:
            flash(refused.message, "error")
            batch_id = int(batch) if batch.isdigit() and len(batch) < 10 else None
        else:
            flash(message, "success")
        return redirect(url_for("ctms_payments.payments", study_id=study_id, batch=batch_id)
                        + ("#batch" if batch_id else ""))

    return view


@bp.get("/studies/<int:study_id>/payments")
@auth_required("session")
def payments(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    access = current_access()
    access.require(Permission.MANAGE_PAYMENTS, study_id)
    session = db_session()
    sites = _visible_sites(study_id)
    read = pay.books(session, sites)
    summary = pay.study_summary(session, study_id, sites, read)
    detail = None
    wanted = request.args.get("batch", "")
    if wanted.isdigit() and len(wanted) < 10:
        try:
            batch, items, lines = pay.batch_detail(session, access, int(wanted))
            if batch.study_id == study_id:
                detail = {"batch": batch, "items": items, "lines": lines}
        except NotFound:
            detail = None
    return render_template(
        "ctms/payments.html", study=study, summary=summary,
        discrepancies=pay.discrepancies(session, sites, read),
        batches=pay.batches(session, study_id),
        detail=detail, sites_by_id={s.id: s for s in sites}, money=money,
        statuses=pay.BATCH_STATUSES, milestones=MILESTONES, today=services().clock.now().date(),
        rates={s.id: rates_text(s.id, read) for s in sites})


@bp.post("/studies/<int:study_id>/payments/contract")
@auth_required("session")
@_form
def save_contract(uow, study_id: int):  # type: ignore[no-untyped-def]
    site_id = _int("site_id", "The site")
    site = db_session().get(Site, site_id)
    if site is None or site.study_id != study_id:
        raise NotFound("There is no such site in this study.")
    f = request.form
    pay.set_contract(uow, current_access(), site_id, pay.ContractTerms(
        currency=f.get("currency", ""), payee_name=f.get("payee_name", ""),
        enrolled_fee=f.get("enrolled_fee", ""), screen_failure_fee=f.get("screen_failure_fee", ""),
        holdback_percent=f.get("holdback_percent", ""), payee_iban=f.get("payee_iban", ""),
        payee_bic=f.get("payee_bic", ""), rates=parse_rates(f.get("rates", ""))))
    return f"The payment contract of site {site.number} is saved.", None


@bp.post("/studies/<int:study_id>/payments/batches")
@auth_required("session")
@_form
def create_batch(uow, study_id: int):  # type: ignore[no-untyped-def]
    until = parse_date(request.form.get("until"), "Activities up to")
    batch_id = pay.create_batch(uow, current_access(), study_id, until=until)
    return "A draft payment batch is ready for approval.", batch_id


def _batch_id(study_id: int) -> int:
    batch_id = _int("batch_id", "The batch")
    batch = pay.batch_detail(db_session(), current_access(), batch_id)[0]
    if batch.study_id != study_id:
        raise NotFound("There is no such payment batch in this study.")
    return batch_id


@bp.post("/studies/<int:study_id>/payments/approve")
@auth_required("session")
@_form
def approve_batch(uow, study_id: int):  # type: ignore[no-untyped-def]
    batch_id = _batch_id(study_id)
    pay.approve_batch(uow, current_access(), batch_id,
                      expected_version=_int("version", "The record version"))
    return "The payment batch is approved.", batch_id


@bp.post("/studies/<int:study_id>/payments/cancel")
@auth_required("session")
@_form
def cancel_batch(uow, study_id: int):  # type: ignore[no-untyped-def]
    batch_id = _batch_id(study_id)
    pay.cancel_batch(uow, current_access(), batch_id, reason=request.form.get("reason", ""),
                     expected_version=_int("version", "The record version"))
    return "The draft batch is cancelled; its accruals are unbilled again.", None


@bp.post("/studies/<int:study_id>/payments/paid")
@auth_required("session")
@_form
def record_payment(uow, study_id: int):  # type: ignore[no-untyped-def]
    item = db_session().get(PaymentItem, _int("item_id", "The payment"))
    if item is None:
        raise NotFound("There is no such payment.")
    batch_id = _batch_id(study_id)
    if item.batch_id != batch_id:
        raise NotFound("There is no such payment in this batch.")
    differs = pay.record_payment(uow, current_access(), item.id,
                                 amount=request.form.get("amount", ""),
                                 paid_on=parse_date(request.form.get("paid_on"), "Paid on")
                                 or services().clock.now().date())
    return ("The payment is recorded" + (" — it differs from the net due, flagged."
                                         if differs else ".")), batch_id


@bp.post("/studies/<int:study_id>/payments/document")
@auth_required("session")
@_form
def file_document(uow, study_id: int):  # type: ignore[no-untyped-def]
    item = db_session().get(PaymentItem, _int("item_id", "The payment"))
    batch_id = _batch_id(study_id)
    if item is None or item.batch_id != batch_id:
        raise NotFound("There is no such payment in this batch.")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("Choose the invoice or receipt file.")
    svc = services()
    stored = receive_file(svc.blobs, upload.stream, upload.filename,
                          tmp_dir=svc.settings.instance_path / "tmp",
                          max_bytes=svc.settings.max_upload_mb * 1024 * 1024)
    kind = request.form.get("kind", "")
    pay.file_financial_document(uow, current_access(), item.id, kind, stored)
    return f"The {kind} is filed in the TMF (05.04.07 Financial Documentation).", batch_id


@bp.post("/studies/<int:study_id>/payments/export")
@auth_required("session")
def export_batch(study_id: int):  # type: ignore[no-untyped-def]
    current_access().require(Permission.MANAGE_PAYMENTS, study_id)
    f = request.form
    try:
        batch_id = _batch_id(study_id)
        debtor = exports.Debtor(f.get("debtor_name", ""), f.get("debtor_iban", ""),
                                f.get("debtor_bic", "")) if f.get("format") == "pain001" else None
        execution: date | None = parse_date(f.get("execution_on"), "Execution date")
        with command() as uow:
            body, mime, name = exports.export_batch(uow, current_access(), batch_id,
                                                    f.get("format", ""), debtor=debtor,
                                                    execution=execution)
            uow.commit()
    except _SHOWN as refused:
        flash(refused.message, "error")
        batch = f.get("batch_id", "")
        return redirect(url_for("ctms_payments.payments", study_id=study_id,
                                batch=batch if batch.isdigit() and len(batch) < 10 else None))
    return Response(body, mimetype=mime,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
