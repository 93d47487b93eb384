"""Demo: a payment contract per ONC-301 site; once the subjects demo has enrolled subjects and
completed visits (it calls :func:`pay_first_batch`), batch 1 approved and exported, one site
paid a little short (a flagged discrepancy)."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from ctms.payments import exports
from ctms.payments import services as pay
from ctms.payments.models import PaymentItem
from etmf.accounts.access import Access, Grant
from etmf.audit.store import Actor, unit_of_work
from etmf.bootstrap import services
from etmf.demo import DemoContext


def make_iban(country: str, bban: str) -> str:
    """An IBAN with correct check digits (ISO 13616) for a country and account number."""
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def _manager(ctx: DemoContext) -> Access:
    uid, name = ctx.users["study_manager"]
    return Access(user_id=uid, name=name, grants=(Grant(ctx.study_id, None, "study_manager"),))


def _run(app: Flask, access: Access, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    svc = services(app)
    with unit_of_work(svc.db, svc.clock, Actor(access.user_id, access.name)) as uow:
        result = fn(uow, access, *args, **kwargs)
        uow.commit()
    return result


def extend_demo(app: Flask, ctx: DemoContext) -> None:
    manager = _manager(ctx)
    for n, (number, site_id) in enumerate(sorted(ctx.site_ids.items())):
        _run(app, manager, pay.set_contract, site_id, pay.ContractTerms(
            currency="EUR", payee_name=f"Site {number} research account",
            enrolled_fee="1200.00", screen_failure_fee="250.00", holdback_percent="10",
            payee_iban=make_iban("DE", f"{37040044 + n:08d}{532013000 + n:010d}"),
            payee_bic="COBADEFFXXX",
            rates=[pay.RateSpec("visit", "V1", "800.00"), pay.RateSpec("visit", "V2", "450.00"),
                   pay.RateSpec("visit", "V3", "450.00"),
                   pay.RateSpec("procedure", "CT", "380.00", "CT scan", visit_code="V4"),
                   pay.RateSpec("milestone", "site_activation", "3000.00")]))
    ctx.progress(f"Payments: contracts for {len(ctx.site_ids)} sites (visit V4 left unpriced "
                 "but for its CT scan, so the discrepancy list has entries)")


def pay_first_batch(app: Flask, ctx: DemoContext) -> None:
    """Batch 1 of everything accrued so far: approved, exported, one site paid 10 € short."""
    manager = _manager(ctx)
    svc = services(app)
    batch_id = _run(app, manager, pay.create_batch, ctx.study_id)
    _run(app, manager, pay.approve_batch, batch_id)
    _run(app, manager, exports.export_batch, batch_id, "csv")
    today = svc.clock.now().date()
    with svc.db.read_session() as s:
        items = s.scalars(select(PaymentItem).where(PaymentItem.batch_id == batch_id)
                          .order_by(PaymentItem.site_id)).all()
    for n, item in enumerate(items):
        amount = item.net - (1000 if n == 0 else 0)
        _run(app, manager, pay.record_payment, item.id,
             amount=f"{amount // 100}.{amount % 100:02d}", paid_on=today)
    ctx.progress(f"Payments: batch 1 paid to {len(items)} sites")
