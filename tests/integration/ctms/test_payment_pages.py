"""Payment and EDC pages and API: a study manager sets a contract, batches, approves and
exports; a coordinator dry-runs and imports an ODM file."""

from __future__ import annotations

import io

import pytest

from tests.conftest import csrf_from
from tests.integration.ctms.test_edc_import import _odm, _subject
from tests.integration.ctms.test_payments import paid_world  # noqa: F401  (fixture)


@pytest.mark.req("FR-CTMS-8")
def test_manager_sets_a_contract_and_batches_approves_and_exports_on_the_page(
        ctms, world, login, paid_world):  # noqa: F811
    client = login(ctms.manager)
    url = f"/ctms/studies/{world.study_id}/payments"
    page = client.get(url)
    html = page.get_data(as_text=True)
    token = csrf_from(html)
    assert "2,275.75 EUR" in html  # accrued at site 101 (see test_payments)
    saved = client.post(url + "/contract", follow_redirects=True, data={
        "csrf_token": token, "site_id": world.site_ids["102"], "currency": "eur",
        "payee_name": "Hospital 102", "enrolled_fee": "100", "holdback_percent": "5",
        "rates": "visit V1 50.00\nprocedure ECG@V1 10 ECG\nmilestone site_activation 300"})
    assert "The payment contract of site 102 is saved." in saved.get_data(as_text=True)
    bad = client.post(url + "/contract", follow_redirects=True, data={
        "csrf_token": token, "site_id": world.site_ids["102"], "currency": "EUR",
        "payee_name": "Hospital 102", "rates": "visit V1"})
    assert "Rate line 1 needs a kind, a code and an amount" in bad.get_data(as_text=True)
    created = client.post(url + "/batches", data={"csrf_token": token}, follow_redirects=True)
    html = created.get_data(as_text=True)
    assert "A draft payment batch is ready for approval." in html
    assert "net <strong>2,048.17 EUR</strong>" in html
    from ctms.payments.models import PaymentBatch
    from etmf.bootstrap import services

    with services(world.app).db.read_session() as s:
        batch = s.query(PaymentBatch).one()
    approved = client.post(url + "/approve", follow_redirects=True, data={
        "csrf_token": token, "batch_id": batch.id, "version": batch.version})
    assert "The payment batch is approved." in approved.get_data(as_text=True)
    exported = client.post(url + "/export", data={"csrf_token": token, "batch_id": batch.id,
                                                  "format": "csv"})
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    assert "-227.58" in exported.get_data(as_text=True)
    upload = client.post(url + "/document", follow_redirects=True, data={
        "csrf_token": token, "batch_id": batch.id, "item_id": _item(world, batch.id),
        "kind": "receipt", "file": (io.BytesIO(_pdf()), "receipt.pdf")},
        content_type="multipart/form-data")
    assert "The receipt is filed in the TMF" in upload.get_data(as_text=True)


def _pdf() -> bytes:
    from tests.conftest import make_pdf

    return make_pdf("Receipt")


def _item(world, batch_id):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from ctms.payments.models import PaymentItem
    from etmf.bootstrap import services

    with services(world.app).db.read_session() as s:
        return s.scalar(select(PaymentItem.id).where(PaymentItem.batch_id == batch_id))


@pytest.mark.req("FR-CTMS-8")
def test_payments_api_creates_approves_and_exports_a_batch(ctms, world, login,
                                                           paid_world):  # noqa: F811
    client = login(ctms.manager)
    token = csrf_from(client.get("/account/").get_data(as_text=True))
    base = f"/api/v1/studies/{world.study_id}/ctms"
    created = client.post(base + "/payment-batches", json={"until": "2026-11-26"},
                          headers={"X-CSRFToken": token})
    assert created.status_code == 201
    assert created.json["items"][0]["net"] == "2048.17" and created.json["status"] == "draft"
    bid = created.json["id"]
    approved = client.post(base + "/payment-batches/approve", json={"batch_id": bid},
                           headers={"X-CSRFToken": token})
    assert approved.json["status"] == "approved"
    xml = client.post(base + "/payment-batches/export", headers={"X-CSRFToken": token}, json={
        "batch_id": bid, "format": "pain001",
        "debtor": {"name": "Sponsor", "iban": "GB82 WEST 1234 5698 7654 32", "bic": "NWBKGB2L"}})
    assert xml.status_code == 200 and b"<CtrlSum>2048.17</CtrlSum>" in xml.data
    summary = client.get(base + "/payments").json
    assert summary["sites"][0]["in_batches"] == "2048.17"
    assert summary["batches"][0]["status"] == "exported"
    doc = client.get("/api/v1/openapi.json").json
    assert "/studies/{study_id}/ctms/payment-batches/export" in doc["paths"]
    assert "/studies/{study_id}/ctms/edc-imports" in doc["paths"]


@pytest.mark.req("FR-CTMS-9")
def test_coordinator_dry_runs_then_confirms_an_odm_import_on_the_page(ctms, world, login):
    from ctms.subjects import services as subjects

    ctms.run(subjects.define_visit, world.study_id, subjects.VisitSpec("V1", "Baseline", 0))
    sid = ctms.run(subjects.screen_subject, site_id=world.site_ids["101"], number="101-009",
                   by=ctms.coordinator)
    ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v2"],
             consented_on=world_today(), by=ctms.coordinator)
    data = _odm("\n".join([
        _subject("101-009", [("Event.baseline_arm_1", "baseline_arm_1",
                              [("enrollment_date", "2026-11-26"),
                               ("visit_date", "2026-11-26")])]),
        _subject("555-000", [("Event.baseline_arm_1", "baseline_arm_1",
                              [("visit_date", "2026-11-26")])])]))
    client = login(ctms.coordinator)
    url = f"/ctms/studies/{world.study_id}/edc"
    token = csrf_from(client.get(url).get_data(as_text=True))
    dry = client.post(url, data={"csrf_token": token, "file": (io.BytesIO(data), "export.xml")},
                      content_type="multipart/form-data")
    html = dry.get_data(as_text=True)
    assert "Subject 101-009: Enrolled on 2026-11-26" in html
    assert "Subject 555-000: Subject 555-000 is not a subject of this study" in html
    sha = html.split('name="sha256" value="')[1].split('"')[0]
    done = client.post(url + "/confirm", data={"csrf_token": token, "sha256": sha,
                                               "filename": "export.xml"},
                       follow_redirects=True)
    assert "Imported: 2 changes, 0 already up to date, 1 problems" in done.get_data(as_text=True)
    api = client.post(f"/api/v1/studies/{world.study_id}/ctms/edc-imports", data=data,
                      content_type="application/xml", headers={"X-CSRFToken": token})
    assert api.json["dry_run"] is True and api.json["changes"] == [] \
        and api.json["unchanged"] == 2


def world_today():  # type: ignore[no-untyped-def]
    from datetime import date

    return date(2026, 11, 26)
