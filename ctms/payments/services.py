"""Payment commands: contracts, batches (draft → approved → exported → paid), receipts.

A batch takes every site's accruals not yet in a batch, up to a date; each site becomes one
item: gross (the sum of its lines), holdback (the contract's percentage of the gross,
rounded half up) and net (gross − holdback). A study manager approves the batch; exporting
it (CSV or ISO 20022 pain.001) marks it exported; recording what each site was actually paid
marks it paid. Invoices and receipts are filed as TMF documents (artifact 05.04.07 Financial
Documentation) through :func:`etmf.documents.services.file_document`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ctms.payments import money
from ctms.payments.accruals import KINDS, MILESTONES, Accrual, site_accruals
from ctms.payments.models import (
    PaymentBatch,
    PaymentContract,
    PaymentItem,
    PaymentLine,
    PaymentRate,
)
from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.documents import services as docs
from etmf.errors import InvalidTransition, NotFound, ValidationError
from etmf.studies.models import Site

BATCH_STATUSES = {"draft": "Draft", "approved": "Approved", "exported": "Exported",
                  "paid": "Paid", "cancelled": "Cancelled"}
#: TMF RM 3.3.1 artifact for invoices, receipts and payment summaries.
FINANCIAL_ARTIFACT = "05.04.07"
DOCUMENT_KINDS = {"invoice": "Invoices", "receipt": "Receipts"}


@dataclass(frozen=True)
class RateSpec:
    kind: str  # visit | procedure | milestone
    code: str
    amount: str  # decimal text in the contract currency
    label: str = ""
    visit_code: str = ""  # for a procedure: the visit at which it is done


@dataclass(frozen=True)
class ContractTerms:
    currency: str
    payee_name: str
    enrolled_fee: str = "0"
    screen_failure_fee: str = "0"
    holdback_percent: str = "0"
    payee_iban: str = ""
    payee_bic: str = ""
    rates: list[RateSpec] = field(default_factory=list)
    document_id: int | None = None


def _site(session: Session, access: Access, site_id: int) -> Site:
    site = session.get(Site, site_id)
    if site is None:
        raise NotFound("There is no such site.")
    access.require(Permission.MANAGE_PAYMENTS, site.study_id, site.id)
    return site


def check_iban(iban: str) -> str:
    """An IBAN without spaces, upper case, with a valid ISO 13616 check (mod 97 = 1)."""
    iban = "".join(iban.split()).upper()
    if not (15 <= len(iban) <= 34 and iban[:2].isalpha() and iban[2:4].isdigit()
            and iban.isalnum()):
        raise ValidationError(f"{iban!r} is not an IBAN.")
    digits = "".join(str(int(c, 36)) for c in iban[4:] + iban[:4])
    if int(digits) % 97 != 1:
        raise ValidationError(f"IBAN {iban} has a wrong check digit.")
    return iban


def check_bic(bic: str) -> str:
    bic = "".join(bic.split()).upper()
    if len(bic) not in (8, 11) or not bic.isalnum() or not bic[4:6].isalpha():
        raise ValidationError(f"{bic!r} is not a BIC (8 or 11 letters and digits).")
    return bic


def set_contract(uow: UnitOfWork, access: Access, site_id: int, terms: ContractTerms) -> None:
    """Record (or replace) the site's payment terms; later batches pay at the new rates."""
    site = _site(uow.session, access, site_id)
    cur = money.check_currency(terms.currency)
    payee = " ".join((terms.payee_name or "").split())
    if not payee or len(payee) > 200:
        raise ValidationError("The contract needs the payee (at most 200 characters).")
    rates: list[dict[str, Any]] = []
    seen = set()
    for r in terms.rates:
        kind, code = r.kind.strip(), r.code.strip()
        visit_code = r.visit_code.strip() if kind == "procedure" else ""
        if kind not in KINDS:
            raise ValidationError(f"Rate kind {kind!r} is not one of {', '.join(KINDS)}.")
        if not code or len(code) > 40 or len(visit_code) > 20:
            raise ValidationError("Each rate needs a code (at most 40 characters).")
        if kind == "milestone" and code not in MILESTONES:
            raise ValidationError(f"Milestone {code!r} is not one of {', '.join(MILESTONES)}.")
        if kind == "procedure" and not visit_code:
            raise ValidationError(f"Procedure {code} needs the visit at which it is done.")
        if (kind, code, visit_code) in seen:
            raise ValidationError(f"The {kind} rate {code} is given twice.")
        seen.add((kind, code, visit_code))
        label = " ".join((r.label or "").split())[:200] or (
            MILESTONES.get(code, code) if kind == "milestone" else code)
        rates.append({"id": uow.allocate_id(PaymentRate), "kind": kind, "code": code,
                      "visit_code": visit_code, "label": label,
                      "amount": money.to_minor(r.amount, cur, f"{kind} rate {code}")})
    contract = uow.session.get(PaymentContract, site.id)
    uow.emit("payment_contract", site.id, "payment.contract_set", {
        "study_id": site.study_id, "site_id": site.id, "currency": cur,
        "enrolled_fee": money.to_minor(terms.enrolled_fee, cur, "per-subject rate"),
        "screen_failure_fee": money.to_minor(terms.screen_failure_fee, cur,
                                             "screen-failure fee"),
        "holdback_bp": money.percent_to_bp(terms.holdback_percent), "payee_name": payee,
        "payee_iban": check_iban(terms.payee_iban) if terms.payee_iban.strip() else None,
        "payee_bic": check_bic(terms.payee_bic) if terms.payee_bic.strip() else None,
        "document_id": terms.document_id, "rates": rates},
        expected_version=contract.version if contract else 0, study_id=site.study_id)


def contract_of(session: Session, site_id: int) -> PaymentContract | None:
    return session.get(PaymentContract, site_id)


def _batched_keys(session: Session, site_id: int) -> set[str]:
    return set(session.scalars(select(PaymentLine.key).where(PaymentLine.site_id == site_id)))


def unbilled(session: Session, contract: PaymentContract, until: date | None = None
             ) -> list[Accrual]:
    """Accruals of the site not in any batch yet."""
    done = _batched_keys(session, contract.site_id)
    return [a for a in site_accruals(session, contract, until)[0] if a.key not in done]


def _batch(session: Session, access: Access, batch_id: int) -> PaymentBatch:
    batch = session.get(PaymentBatch, batch_id)
    if batch is None:
        raise NotFound("There is no such payment batch.")
    access.require(Permission.MANAGE_PAYMENTS, batch.study_id)
    return batch


def create_batch(uow: UnitOfWork, access: Access, study_id: int, *,
                 until: date | None = None) -> int:
    """A draft batch of every site's unbilled accruals up to ``until`` (default today)."""
    access.require(Permission.MANAGE_PAYMENTS, study_id)
    # No activity is dated in the future, so "up to a later day" means "up to today".
    until = min(until or uow.now.date(), uow.now.date())
    scope = access.site_scope(study_id)
    items: list[dict[str, Any]] = []
    for contract in uow.session.scalars(select(PaymentContract)
                                        .where(PaymentContract.study_id == study_id)
                                        .order_by(PaymentContract.site_id)):
        if scope is not None and contract.site_id not in scope:
            continue
        lines = unbilled(uow.session, contract, until)
        if not lines:
            continue
        gross = sum(a.amount for a in lines)
        holdback = money.share(gross, contract.holdback_bp)
        items.append({"id": uow.allocate_id(PaymentItem), "site_id": contract.site_id,
                      "currency": contract.currency, "gross": gross, "holdback": holdback,
                      "net": gross - holdback, "lines": [
                          {"id": uow.allocate_id(PaymentLine), "key": a.key, "kind": a.kind,
                           "description": a.description[:300],
                           "activity_on": a.activity_on.isoformat(), "amount": a.amount}
                          for a in lines]})
    if not items:
        raise InvalidTransition(f"Nothing to pay: no site has accruals up to "
                                f"{until.isoformat()} that are not in a batch already.")
    number = int(uow.session.scalar(select(func.max(PaymentBatch.number))
                                    .where(PaymentBatch.study_id == study_id)) or 0) + 1
    batch_id = uow.allocate_id(PaymentBatch)
    uow.emit("payment_batch", batch_id, "payment.batch_created",
             {"study_id": study_id, "number": number, "period_end": until.isoformat(),
              "items": items}, expected_version=0, study_id=study_id)
    return batch_id


_NEXT = {"approve": ("draft", "approved"), "cancel": ("draft", "cancelled")}


def _step(uow: UnitOfWork, access: Access, batch_id: int, action: str,
          expected_version: int | None, reason: str | None = None) -> PaymentBatch:
    batch = _batch(uow.session, access, batch_id)
    before, after = _NEXT[action]
    if batch.status != before:
        raise InvalidTransition(f"Batch {batch.number} is {BATCH_STATUSES[batch.status]}; only "
                                f"a {BATCH_STATUSES[before].lower()} batch can be "
                                f"{'approved' if action == 'approve' else 'cancelled'}.")
    uow.emit("payment_batch", batch.id, f"payment.batch_{after}",
             {"study_id": batch.study_id, "number": batch.number, "from": before, "to": after},
             expected_version=batch.version if expected_version is None else expected_version,
             study_id=batch.study_id, reason=reason, reason_required=action == "cancel")
    return batch


def approve_batch(uow: UnitOfWork, access: Access, batch_id: int, *,
                  expected_version: int | None = None) -> None:
    """A study manager approves a draft batch: its lines and amounts are now fixed."""
    _step(uow, access, batch_id, "approve", expected_version)


def cancel_batch(uow: UnitOfWork, access: Access, batch_id: int, *, reason: str,
                 expected_version: int | None = None) -> None:
    """Drop a draft batch; its accruals become unbilled again."""
    _step(uow, access, batch_id, "cancel", expected_version, reason)


def mark_exported(uow: UnitOfWork, access: Access, batch_id: int, file_format: str) -> None:
    """Record an export of an approved (or already exported) batch."""
    batch = _batch(uow.session, access, batch_id)
    if batch.status not in ("approved", "exported", "paid"):
        raise InvalidTransition(f"Batch {batch.number} is {BATCH_STATUSES[batch.status]}; "
                                "approve it before exporting the payment file.")
    uow.emit("payment_batch", batch.id, "payment.batch_exported",
             {"study_id": batch.study_id, "number": batch.number, "format": file_format},
             expected_version=batch.version, study_id=batch.study_id)


def record_payment(uow: UnitOfWork, access: Access, item_id: int, *, amount: str,
                   paid_on: date) -> bool:
    """Record what a site was actually paid; returns whether it differs from the net due."""
    item = uow.session.get(PaymentItem, item_id)
    if item is None:
        raise NotFound("There is no such payment.")
    batch = _batch(uow.session, access, item.batch_id)
    if batch.status not in ("exported", "paid"):
        raise InvalidTransition(f"Batch {batch.number} is {BATCH_STATUSES[batch.status]}; "
                                "export it before recording payments.")
    if paid_on > uow.now.date():
        raise ValidationError(f"The payment date {paid_on.isoformat()} is in the future.")
    paid = money.to_minor(amount, item.currency, "amount paid")
    others_unpaid = uow.session.scalar(
        select(func.count()).select_from(PaymentItem).where(
            PaymentItem.batch_id == batch.id, PaymentItem.id != item.id,
            PaymentItem.paid_amount.is_(None))) or 0
    uow.emit("payment_batch", batch.id, "payment.item_paid",
             {"study_id": batch.study_id, "item_id": item.id, "site_id": item.site_id,
              "amount": paid, "currency": item.currency, "net": item.net,
              "paid_on": paid_on.isoformat(), "batch_paid": others_unpaid == 0},
             expected_version=batch.version, study_id=batch.study_id)
    return paid != item.net


def file_financial_document(uow: UnitOfWork, access: Access, item_id: int, kind: str,
                            stored: docs.StoredFile) -> int:
    """File a site's invoice or receipt for a payment as a TMF document and link it."""
    if kind not in DOCUMENT_KINDS:
        raise ValidationError("The document is an invoice or a receipt.")
    item = uow.session.get(PaymentItem, item_id)
    if item is None:
        raise NotFound("There is no such payment.")
    batch = _batch(uow.session, access, item.batch_id)
    site = uow.session.get(Site, item.site_id)
    assert site is not None
    doc_id = docs.file_document(uow, access, docs.FileDocument(
        study_id=batch.study_id, artifact=FINANCIAL_ARTIFACT, level="site", site_id=site.id,
        sub_artifact=DOCUMENT_KINDS[kind],
        title=f"{kind.capitalize()} – payment batch {batch.number} – site {site.number}",
        file=stored, document_date=uow.now.date()))
    uow.emit("payment_batch", batch.id, "payment.document_linked",
             {"study_id": batch.study_id, "item_id": item.id, "kind": kind,
              "document_id": doc_id}, expected_version=batch.version, study_id=batch.study_id)
    return doc_id


# ---- reading ---------------------------------------------------------------------------------


@dataclass
class SiteMoney:
    site: Site
    contract: PaymentContract | None
    accrued: int = 0  # everything earned so far
    unbilled: int = 0  # earned, in no batch yet
    in_batches: int = 0  # net in draft/approved/exported batches, not yet paid
    paid: int = 0
    holdback: int = 0  # withheld in batches so far


@dataclass(frozen=True)
class Discrepancy:
    site_id: int
    kind: str  # paid_differs | rate_changed | not_accrued | unpriced
    message: str


@dataclass
class Books:
    """The payment records of some sites, read in a few statements for all of them (the
    overview shows every site of a study: 500 in a Phase III trial)."""

    contracts: dict[int, PaymentContract]
    items: dict[int, list[PaymentItem]]  # by site, oldest first
    lines: dict[int, list[PaymentLine]]  # by site, oldest first
    batches: dict[int, PaymentBatch]
    rates: dict[int, list[PaymentRate]]  # by site, by kind, visit and code
    _accruals: dict[int, tuple[list[Accrual], list[Any]]] = field(default_factory=dict)

    def accruals(self, session: Session, contract: PaymentContract
                 ) -> tuple[list[Accrual], list[Any]]:
        """``site_accruals`` of the contract, worked out once per Books."""
        if contract.site_id not in self._accruals:
            self._accruals[contract.site_id] = site_accruals(session, contract)
        return self._accruals[contract.site_id]


def books(session: Session, sites: list[Site]) -> Books:
    ids = sorted(site.id for site in sites)

    def by_site(stmt: Any) -> dict[int, list[Any]]:
        found: dict[int, list[Any]] = {}
        for row in session.scalars(stmt):
            found.setdefault(row.site_id, []).append(row)
        return found

    items = by_site(select(PaymentItem).where(PaymentItem.site_id.in_(ids))
                    .order_by(PaymentItem.id))
    batch_ids = sorted({i.batch_id for site_items in items.values() for i in site_items})
    return Books(
        contracts={c.site_id: c for c in session.scalars(
            select(PaymentContract).where(PaymentContract.site_id.in_(ids)))},
        items=items,
        lines=by_site(select(PaymentLine).where(PaymentLine.site_id.in_(ids))
                      .order_by(PaymentLine.id)),
        batches={b.id: b for b in session.scalars(
            select(PaymentBatch).where(PaymentBatch.id.in_(batch_ids)))} if batch_ids else {},
        rates=by_site(select(PaymentRate).where(PaymentRate.site_id.in_(ids))
                      .order_by(PaymentRate.kind, PaymentRate.visit_code, PaymentRate.code)))


def study_summary(session: Session, study_id: int, sites: list[Site],
                  read: Books | None = None) -> list[SiteMoney]:
    read = read or books(session, sites)
    rows = []
    for site in sites:
        contract = read.contracts.get(site.id)
        row = SiteMoney(site, contract)
        if contract is not None:
            accrued = read.accruals(session, contract)[0]
            row.accrued = sum(a.amount for a in accrued)
            done = {line.key for line in read.lines.get(site.id, [])}
            row.unbilled = sum(a.amount for a in accrued if a.key not in done)
        for item in read.items.get(site.id, []):
            row.holdback += item.holdback
            if item.paid_amount is not None:
                row.paid += item.paid_amount
            else:
                row.in_batches += item.net
        rows.append(row)
    return rows


def discrepancies(session: Session, sites: list[Site],
                  read: Books | None = None) -> list[Discrepancy]:
    """Paid vs due, batched vs contracted, and activities the contract does not price."""
    read = read or books(session, sites)
    out: list[Discrepancy] = []
    for site in sites:
        contract = read.contracts.get(site.id)
        for item in read.items.get(site.id, []):
            if item.paid_amount is not None and item.paid_amount != item.net:
                out.append(Discrepancy(site.id, "paid_differs", (
                    f"Site {site.number}, batch {read.batches[item.batch_id].number}: paid "
                    f"{money.display(item.paid_amount, item.currency)} but "
                    f"{money.display(item.net, item.currency)} was due.")))
        if contract is None:
            continue
        accrued, unpriced = read.accruals(session, contract)
        now = {a.key: a for a in accrued}
        for line in read.lines.get(site.id, []):
            current = now.get(line.key)
            if current is None:
                out.append(Discrepancy(site.id, "not_accrued", (
                    f"Site {site.number}: {line.description} was batched for "
                    f"{money.display(line.amount, contract.currency)} but the contract no "
                    "longer pays it.")))
            elif current.amount != line.amount:
                out.append(Discrepancy(site.id, "rate_changed", (
                    f"Site {site.number}: {line.description} was batched for "
                    f"{money.display(line.amount, contract.currency)}; the contract now says "
                    f"{money.display(current.amount, contract.currency)}.")))
        out.extend(Discrepancy(site.id, "unpriced", f"Site {site.number}: {u.description}.")
                   for u in unpriced)
    return out


def batches(session: Session, study_id: int) -> list[PaymentBatch]:
    return list(session.scalars(select(PaymentBatch).where(PaymentBatch.study_id == study_id)
                                .order_by(PaymentBatch.number.desc())))


def batch_detail(session: Session, access: Access, batch_id: int
                 ) -> tuple[PaymentBatch, list[PaymentItem], dict[int, list[PaymentLine]]]:
    batch = _batch(session, access, batch_id)
    items = list(session.scalars(select(PaymentItem).where(PaymentItem.batch_id == batch.id)
                                 .order_by(PaymentItem.site_id)))
    lines: dict[int, list[PaymentLine]] = {}
    for line in session.scalars(select(PaymentLine).where(PaymentLine.batch_id == batch.id)
                                .order_by(PaymentLine.activity_on, PaymentLine.id)):
        lines.setdefault(line.item_id, []).append(line)
    return batch, items, lines

