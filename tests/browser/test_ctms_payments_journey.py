"""Site payments in a real browser: a study manager sets the site's contract; a coordinator
completes visits; the manager sees them accrue, creates a batch, approves and exports it."""

from __future__ import annotations

import csv
import io
from datetime import date
from pathlib import Path

import pytest

from ctms.subjects import services as subjects
from tests.browser.test_ctms_journey import _sign_in
from tests.integration.ctms.conftest import ctms  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


@pytest.mark.req("FR-CTMS-8")
def test_completed_visits_accrue_and_a_batch_is_approved_and_exported(
        ctms, world, live_server, page):  # noqa: F811
    for spec in (subjects.VisitSpec("V1", "Baseline", 0),
                 subjects.VisitSpec("V2", "Week 2", 14, 3, 3)):
        ctms.run(subjects.define_visit, world.study_id, spec)
    sid = ctms.run(subjects.screen_subject, site_id=world.site_ids["101"], number="101-007",
                   screened_on=date(2026, 11, 2), by=ctms.coordinator)
    ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v2"],
             consented_on=date(2026, 11, 2), by=ctms.coordinator)
    ctms.run(subjects.change_status, sid, "enrolled", effective_on=date(2026, 11, 2),
             by=ctms.coordinator)

    _sign_in(page, live_server, ctms.manager)
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}")
    page.get_by_role("link", name="Payments").click()
    form = page.locator("form", has=page.get_by_role("button",
                                                     name="Save contract of site 101"))
    form.get_by_label("Per enrolled subject").fill("400.00")
    form.get_by_label("Holdback %").fill("10")
    form.get_by_label("Rates, one a line").fill("visit V1 150.00\nvisit V2 250.25")
    form.get_by_role("button", name="Save contract of site 101").click()
    page.get_by_text("The payment contract of site 101 is saved.").wait_for()
    site = page.locator("[data-testid=payment-summary] tr[data-site='101']")
    assert "400.00 EUR" in site.get_by_test_id("unbilled").inner_text()  # enrolled only

    _sign_in(page, live_server, ctms.coordinator)
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}/subjects")
    row = page.locator("tr[data-subject='101-007']")
    row.locator("form", has=page.get_by_role("button", name="Complete V1")) \
        .get_by_label("Done on").fill("2026-11-02")
    row.get_by_role("button", name="Complete V1").click()
    page.get_by_text("Visit V1 is completed on 2026-11-02.").wait_for()
    row = page.locator("tr[data-subject='101-007']")
    row.locator("form", has=page.get_by_role("button", name="Complete V2")) \
        .get_by_label("Done on").fill("2026-11-16")
    row.get_by_role("button", name="Complete V2").click()
    page.get_by_text("Visit V2 is completed on 2026-11-16.").wait_for()

    _sign_in(page, live_server, ctms.manager)
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}/payments")
    site = page.locator("[data-testid=payment-summary] tr[data-site='101']")
    # 400.00 + 150.00 + 250.25 = 800.25
    assert "800.25 EUR" in site.get_by_test_id("unbilled").inner_text()
    page.get_by_role("button", name="Create payment batch").click()
    page.get_by_text("A draft payment batch is ready for approval.").wait_for()
    batch = page.get_by_test_id("batch")
    # holdback 10 % of 800.25 = 80.025 → 80.03; net 720.22
    assert "net 720.22 EUR" in batch.inner_text()
    page.get_by_role("button", name="Approve batch 1").click()
    page.get_by_text("The payment batch is approved.").wait_for()
    assert page.get_by_test_id("batch-status").inner_text() == "Approved"
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV of batch 1").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["amount"] for r in rows] == ["400.00", "150.00", "250.25", "-80.03"]
    page.goto(f"{live_server.url}/ctms/studies/{world.study_id}/payments")
    assert "Exported" in page.get_by_test_id("batches").inner_text()
