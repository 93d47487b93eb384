"""Payment events: contracts with their rates, batches with their items and lines."""

from __future__ import annotations

from datetime import date

from sqlalchemy import delete
from sqlalchemy.orm import Session

from ctms.payments.models import (
    PaymentBatch,
    PaymentContract,
    PaymentItem,
    PaymentLine,
    PaymentRate,
)
from etmf.audit.store import PendingEvent, projection


@projection("payment.contract_set")
def contract_set(session: Session, event: PendingEvent) -> None:
    d = event.data
    site_id = int(event.stream_id)
    contract = session.get(PaymentContract, site_id)
    if contract is None:
        contract = PaymentContract(site_id=site_id, study_id=d["study_id"])
        session.add(contract)
    for name in ("currency", "enrolled_fee", "screen_failure_fee", "holdback_bp", "payee_name",
                 "payee_iban", "payee_bic", "document_id"):
        setattr(contract, name, d[name])
    contract.updated_at = event.occurred_at
    contract.updated_by_name = event.actor.name
    contract.version = event.stream_version
    session.execute(delete(PaymentRate).where(PaymentRate.site_id == site_id))
    session.add_all(PaymentRate(id=r["id"], site_id=site_id, kind=r["kind"], code=r["code"],
                                visit_code=r["visit_code"], label=r["label"],
                                amount=r["amount"])
                    for r in d["rates"])  # type: ignore[union-attr]


@projection("payment.batch_created")
def batch_created(session: Session, event: PendingEvent) -> None:
    d = event.data
    batch_id = int(event.stream_id)
    session.add(PaymentBatch(id=batch_id, study_id=d["study_id"], number=d["number"],
                             status="draft", period_end=date.fromisoformat(d["period_end"]),
                             created_at=event.occurred_at, created_by_name=event.actor.name,
                             version=event.stream_version))
    session.flush()
    for item in d["items"]:  # type: ignore[union-attr]
        session.add(PaymentItem(id=item["id"], batch_id=batch_id, site_id=item["site_id"],
                                currency=item["currency"], gross=item["gross"],
                                holdback=item["holdback"], net=item["net"]))
        session.flush()
        session.add_all(PaymentLine(id=line["id"], item_id=item["id"], batch_id=batch_id,
                                    site_id=item["site_id"], key=line["key"], kind=line["kind"],
                                    description=line["description"],
                                    activity_on=date.fromisoformat(line["activity_on"]),
                                    amount=line["amount"])
                        for line in item["lines"])


def _batch(session: Session, event: PendingEvent) -> PaymentBatch:
    batch = session.get(PaymentBatch, int(event.stream_id))
    assert batch is not None
    batch.version = event.stream_version
    return batch


@projection("payment.batch_approved")
def batch_approved(session: Session, event: PendingEvent) -> None:
    batch = _batch(session, event)
    batch.status = "approved"
    batch.approved_at = event.occurred_at
    batch.approved_by_name = event.actor.name


@projection("payment.batch_cancelled")
def batch_cancelled(session: Session, event: PendingEvent) -> None:
    batch = _batch(session, event)
    batch.status = "cancelled"
    # The accruals become unbilled again: the batch keeps no lines or items.
    session.execute(delete(PaymentLine).where(PaymentLine.batch_id == batch.id))
    session.execute(delete(PaymentItem).where(PaymentItem.batch_id == batch.id))


@projection("payment.batch_exported")
def batch_exported(session: Session, event: PendingEvent) -> None:
    batch = _batch(session, event)
    if batch.status == "approved":
        batch.status = "exported"
    batch.exported_at = event.occurred_at


@projection("payment.item_paid")
def item_paid(session: Session, event: PendingEvent) -> None:
    d = event.data
    batch = _batch(session, event)
    item = session.get(PaymentItem, d["item_id"])
    assert item is not None
    item.paid_amount = d["amount"]
    item.paid_on = date.fromisoformat(d["paid_on"])
    if d["batch_paid"]:
        batch.status = "paid"


@projection("payment.document_linked")
def document_linked(session: Session, event: PendingEvent) -> None:
    d = event.data
    _batch(session, event)
    item = session.get(PaymentItem, d["item_id"])
    assert item is not None
    if d["kind"] == "invoice":
        item.invoice_document_id = d["document_id"]
    else:
        item.receipt_document_id = d["document_id"]
