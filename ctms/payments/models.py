"""Payment contracts and their rates, payment batches, their per-site items and lines.

Amounts are integers in the currency's minor units (see :mod:`ctms.payments.money`).
Accruals are not stored: they are computed from completed activities (subjects enrolled or
screen-failed, visits completed, site milestones) each time; a batch line records the
accrual it pays, keyed so that an activity is paid once.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from etmf.db import Base, UTCDateTime


class PaymentContract(Base):
    """The payment terms agreed with one site."""

    __tablename__ = "ctms_payment_contracts"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"), primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    currency: Mapped[str] = mapped_column(String(3))
    enrolled_fee: Mapped[int] = mapped_column(Integer)
    screen_failure_fee: Mapped[int] = mapped_column(Integer)
    holdback_bp: Mapped[int] = mapped_column(Integer)
    payee_name: Mapped[str] = mapped_column(String(200))
    payee_iban: Mapped[str | None] = mapped_column(String(34))
    payee_bic: Mapped[str | None] = mapped_column(String(11))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=0)


class PaymentRate(Base):
    """A rate of a contract: per completed visit (by visit code), per procedure (done at a
    visit), or per milestone (site activation, first subject enrolled, close-out)."""

    __tablename__ = "ctms_payment_rates"
    __table_args__ = (UniqueConstraint("site_id", "kind", "code", "visit_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    kind: Mapped[str] = mapped_column(String(20))  # visit | procedure | milestone
    code: Mapped[str] = mapped_column(String(40))
    visit_code: Mapped[str] = mapped_column(String(20), default="")  # procedures: at which visit
    label: Mapped[str] = mapped_column(String(200))
    amount: Mapped[int] = mapped_column(Integer)


class PaymentBatch(Base):
    """A payment run of a study: draft → approved → exported → paid (or cancelled as draft)."""

    __tablename__ = "ctms_payment_batches"
    __table_args__ = (UniqueConstraint("study_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    period_end: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_name: Mapped[str] = mapped_column(String(200))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by_name: Mapped[str | None] = mapped_column(String(200))
    exported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=0)


class PaymentItem(Base):
    """One site's payment within a batch: gross, holdback withheld, net to pay, and paid."""

    __tablename__ = "ctms_payment_items"
    __table_args__ = (UniqueConstraint("batch_id", "site_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("ctms_payment_batches.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    currency: Mapped[str] = mapped_column(String(3))
    gross: Mapped[int] = mapped_column(Integer)
    holdback: Mapped[int] = mapped_column(Integer)
    net: Mapped[int] = mapped_column(Integer)
    paid_amount: Mapped[int | None] = mapped_column(Integer)
    paid_on: Mapped[date | None] = mapped_column(Date)
    invoice_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    receipt_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))


class PaymentLine(Base):
    """One accrual paid by an item; ``key`` names the activity (an activity is paid once)."""

    __tablename__ = "ctms_payment_lines"
    __table_args__ = (UniqueConstraint("site_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("ctms_payment_items.id"))
    batch_id: Mapped[int] = mapped_column(ForeignKey("ctms_payment_batches.id"))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    key: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(300))
    activity_on: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(Integer)
