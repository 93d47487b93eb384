"""Site payments: accruals from completed activities, batches with holdback, payment files,
discrepancies, and invoices filed as TMF documents. Every amount is worked out by hand."""

from __future__ import annotations

import csv
import io
from datetime import date
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import select

from ctms.payments import exports
from ctms.payments import services as pay
from ctms.payments.accruals import site_accruals
from ctms.payments.models import PaymentBatch, PaymentItem, PaymentLine
from ctms.subjects import services as subjects
from ctms.subjects.models import Visit
from etmf.errors import Forbidden, InvalidTransition, ValidationError
from tests.conftest import make_pdf

IBAN, BIC = "DE89370400440532013000", "COBADEFFXXX"
SPONSOR = exports.Debtor("Sponsor Pharma AG", "GB82WEST12345698765432", "NWBKGB2L")


def _terms(v2: str = "350.50") -> pay.ContractTerms:
    return pay.ContractTerms(
        currency="EUR", payee_name="Klinikum Nord", enrolled_fee="500.00",
        screen_failure_fee="150", holdback_percent="10", payee_iban=IBAN, payee_bic=BIC,
        rates=[pay.RateSpec("visit", "V1", "200.00"), pay.RateSpec("visit", "V2", v2),
               pay.RateSpec("procedure", "ECG", "75.25", "12-lead ECG", visit_code="V2"),
               pay.RateSpec("milestone", "site_activation", "1,000.00")])


@pytest.fixture
def paid_world(ctms, world):  # type: ignore[no-untyped-def]
    """Subject 101-001 enrolled 2026-11-01, V1 done that day and V2 on 2026-11-15; subject
    101-002 a screen failure on 2026-11-03; site 101 activated on 2026-11-26 (today)."""
    site = world.site_ids["101"]
    for spec in (subjects.VisitSpec("V1", "Baseline", 0),
                 subjects.VisitSpec("V2", "Week 2", 14, 3, 3),
                 subjects.VisitSpec("V3", "Week 4", 28, 3, 3)):
        ctms.run(subjects.define_visit, world.study_id, spec)
    ctms.run(pay.set_contract, site, _terms())
    a = ctms.run(subjects.screen_subject, site_id=site, number="101-001",
                 screened_on=date(2026, 11, 1), by=ctms.coordinator)
    ctms.run(subjects.record_consent, a, icf_version_id=ctms.icf["v2"],
             consented_on=date(2026, 11, 1), by=ctms.coordinator)
    ctms.run(subjects.change_status, a, "enrolled", effective_on=date(2026, 11, 1),
             by=ctms.coordinator)
    b = ctms.run(subjects.screen_subject, site_id=site, number="101-002",
                 screened_on=date(2026, 11, 2), by=ctms.coordinator)
    ctms.run(subjects.change_status, b, "screen_failed", effective_on=date(2026, 11, 3),
             reason="Exclusion criterion 2", by=ctms.coordinator)
    with world.uow() as uow:
        visits = {v.code: v.id for v in uow.session.scalars(
            select(Visit).where(Visit.subject_id == a))}
    ctms.run(subjects.complete_visit, visits["V1"], completed_on=date(2026, 11, 1))
    ctms.run(subjects.complete_visit, visits["V2"], completed_on=date(2026, 11, 15))
    return visits


@pytest.mark.req("FR-CTMS-8")
def test_accruals_come_from_completed_activities_and_a_batch_withholds_the_holdback(
        ctms, world, svc, paid_world):
    with svc.db.read_session() as s:
        accrued, unpriced = site_accruals(s, pay.contract_of(s, world.site_ids["101"]))
    assert [(a.kind, a.amount) for a in accrued] == [
        ("enrolled", 50000), ("visit", 20000), ("screen_failure", 15000),
        ("procedure", 7525), ("visit", 35050), ("milestone", 100000)]
    assert unpriced == []
    batch_id = ctms.run(pay.create_batch, world.study_id)
    with svc.db.read_session() as s:
        item = s.scalars(select(PaymentItem).where(PaymentItem.batch_id == batch_id)).one()
        # 500 + 200 + 150 + 75.25 + 350.50 + 1000 = 2275.75; 10 % = 227.575 → 227.58
        assert (item.gross, item.holdback, item.net) == (227575, 22758, 204817)
        assert s.get(PaymentBatch, batch_id).status == "draft"  # type: ignore[union-attr]
    with pytest.raises(InvalidTransition, match="Nothing to pay"):
        ctms.run(pay.create_batch, world.study_id)  # each activity is paid once
    with pytest.raises(InvalidTransition, match="approve it before exporting"):
        ctms.run(exports.export_batch, batch_id, "csv")
    with pytest.raises(Forbidden):
        ctms.run(pay.approve_batch, batch_id, by=ctms.coordinator)
    ctms.run(pay.approve_batch, batch_id)

    body, mime, name = ctms.run(exports.export_batch, batch_id, "csv")
    assert mime == "text/csv" and name == "TST-001-payment-batch-1.csv"
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert [r["amount"] for r in rows] == ["500.00", "200.00", "150.00", "75.25", "350.50",
                                           "1000.00", "-227.58"]
    assert sum(int(r["amount"].replace(".", "")) for r in rows) == 204817

    xml, mime, _ = ctms.run(exports.export_batch, batch_id, "pain001", debtor=SPONSOR)
    ns = {"p": exports.PAIN_NS}
    root = ET.fromstring(xml)
    assert root.findtext("p:CstmrCdtTrfInitn/p:GrpHdr/p:CtrlSum", namespaces=ns) == "2048.17"
    tx = root.find("p:CstmrCdtTrfInitn/p:PmtInf/p:CdtTrfTxInf", ns)
    assert tx is not None
    amount = tx.find("p:Amt/p:InstdAmt", ns)
    assert amount is not None and (amount.text, amount.get("Ccy")) == ("2048.17", "EUR")
    assert tx.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=ns) == IBAN
    with svc.db.read_session() as s:
        assert s.get(PaymentBatch, batch_id).status == "exported"  # type: ignore[union-attr]


@pytest.mark.req("FR-CTMS-8")
def test_paid_vs_due_and_batched_vs_contracted_are_flagged(ctms, world, svc, paid_world):
    batch_id = ctms.run(pay.create_batch, world.study_id)
    ctms.run(pay.approve_batch, batch_id)
    ctms.run(exports.export_batch, batch_id, "csv")
    with svc.db.read_session() as s:
        item = s.scalars(select(PaymentItem).where(PaymentItem.batch_id == batch_id)).one()
    assert ctms.run(pay.record_payment, item.id, amount="2048.00",
                    paid_on=date(2026, 11, 26)) is True
    ctms.run(pay.set_contract, world.site_ids["101"], _terms(v2="400.00"))
    with world.uow() as uow:
        visits = {v.code: v for v in uow.session.scalars(select(Visit))}
    ctms.run(subjects.complete_visit, visits["V3"].id, completed_on=date(2026, 11, 26))
    with svc.db.read_session() as s:
        site = s.get(pay.Site, world.site_ids["101"])
        flags = pay.discrepancies(s, [site])  # type: ignore[list-item]
        summary = pay.study_summary(s, world.study_id, [site])[0]  # type: ignore[list-item]
        assert s.get(PaymentBatch, batch_id).status == "paid"  # type: ignore[union-attr]
    assert [f.kind for f in flags] == ["paid_differs", "rate_changed", "unpriced"]
    assert "paid 2,048.00 EUR but 2,048.17 EUR was due" in flags[0].message
    assert "350.50 EUR; the contract now says 400.00 EUR" in flags[1].message
    assert "visit V3" in flags[2].message
    # accrued now: 2275.75 − 350.50 + 400.00 = 2325.25; unbilled: the rate difference is not
    # re-billed (the V2 activity is paid), nothing else is new.
    assert (summary.accrued, summary.unbilled, summary.paid, summary.holdback) == (
        232525, 0, 204800, 22758)
    # The overview of every site reads the same in as many statements as one site's.
    from sqlalchemy import event

    def overview(s, sites):  # type: ignore[no-untyped-def]
        statements: list[str] = []
        listen = lambda *args: statements.append(args[2])  # noqa: E731
        event.listen(svc.db.engine, "before_cursor_execute", listen)
        try:
            read = pay.books(s, sites)
            found = (pay.discrepancies(s, sites, read),
                     pay.study_summary(s, world.study_id, sites, read))
        finally:
            event.remove(svc.db.engine, "before_cursor_execute", listen)
        return found, len(statements)

    with svc.db.read_session() as s:
        every = list(s.scalars(select(pay.Site).where(pay.Site.study_id == world.study_id)))
        (one_flags, one_rows), one_sql = overview(s, [s.get(pay.Site, world.site_ids["101"])])
        (all_flags, all_rows), all_sql = overview(s, every)
    assert len(every) > 1 and all_sql == one_sql
    assert all_flags == one_flags == flags
    assert [r for r in all_rows if r.site.id == world.site_ids["101"]][0].accrued == 232525


@pytest.mark.req("FR-CTMS-8")
def test_invoices_are_filed_as_tmf_documents_and_a_cancelled_batch_frees_its_accruals(
        ctms, world, svc, paid_world):
    from etmf.documents.models import Document

    batch_id = ctms.run(pay.create_batch, world.study_id, until=date(2026, 11, 10))
    with svc.db.read_session() as s:
        lines = s.scalars(select(PaymentLine.key).where(PaymentLine.batch_id == batch_id)).all()
        item = s.scalars(select(PaymentItem).where(PaymentItem.batch_id == batch_id)).one()
    assert len(lines) == 3  # enrolled, V1, screen failure: V2 and activation came later
    stored = world.store_file(make_pdf("Invoice 17"), filename="invoice-17.pdf")
    doc_id = ctms.run(pay.file_financial_document, item.id, "invoice", stored)
    with svc.db.read_session() as s:
        doc = s.get(Document, doc_id)
        assert doc is not None and doc.artifact_number == "05.04.07"
        assert doc.site_id == world.site_ids["101"] and doc.sub_artifact == "Invoices"
        assert s.get(PaymentItem, item.id).invoice_document_id == doc_id  # type: ignore[union-attr]
    with pytest.raises(ValidationError):
        ctms.run(pay.cancel_batch, batch_id, reason="")
    ctms.run(pay.cancel_batch, batch_id, reason="Wrong period")
    second = ctms.run(pay.create_batch, world.study_id)
    with svc.db.read_session() as s:
        assert len(s.scalars(select(PaymentLine).where(PaymentLine.batch_id == second))
                   .all()) == 6
        from etmf.audit.service import replay_and_compare

        assert replay_and_compare(s) == []  # every payment table is rebuilt from the log


@pytest.mark.req("FR-CTMS-8")
def test_contract_terms_are_validated_and_amounts_never_floats(ctms, world):
    from ctms.payments import money

    assert money.to_minor("1,250.50", "EUR") == 125050 and money.to_minor("1250", "JPY") == 1250
    assert money.share(227575, 1000) == 22758 and money.share(5, 1000) == 1
    for bad in ("12.345", "-5", "abc"):
        with pytest.raises(ValidationError):
            money.to_minor(bad, "EUR")
    with pytest.raises(ValidationError):
        money.to_minor(1.5, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="check digit"):
        pay.check_iban("DE89370400440532013001")
    with pytest.raises(ValidationError, match="Milestone"):
        ctms.run(pay.set_contract, world.site_ids["101"], pay.ContractTerms(
            currency="EUR", payee_name="X", rates=[pay.RateSpec("milestone", "party", "1")]))
    with pytest.raises(Forbidden):
        ctms.run(pay.set_contract, world.site_ids["101"], _terms(), by=ctms.coordinator)
