"""An auditor reads a document's audit trail in the browser and exports it."""

from __future__ import annotations

import csv
import io

import pytest

from etmf.documents import services as docs
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.req("AUD-5")]


def test_auditor_filters_a_documents_trail_by_user_and_exports_csv(world, live_server, page):
    specialist = world.user("tmf_specialist", name="Sam Specialist")
    qc = world.user("qc_reviewer", name="Quinn Reviewer")
    auditor = world.user("auditor", name="Audrey Auditor")
    doc_id = world.document(specialist, title="Monitoring Plan draft", state="approved", qc=qc)
    with world.uow(specialist.name, specialist.id) as uow:
        version = uow.session.get(docs.Document, doc_id).version
        docs.change_metadata(uow, world.access(specialist), doc_id,
                             {"title": "Monitoring Plan"}, expected_version=version,
                             reason="final title")
        uow.commit()

    page.goto(live_server.url + "/login")
    page.get_by_label("E-mail address").fill(auditor.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(live_server.url + "/")
    page.goto(f"{live_server.url}/documents/{doc_id}")
    page.get_by_role("link", name="Full audit trail and export").click()
    page.get_by_label("Who").select_option(label="Sam Specialist")
    page.get_by_role("button", name="Apply").click()
    table = page.get_by_test_id("audit").inner_text()
    assert "Quinn Reviewer" not in table
    assert "title: Monitoring Plan draft → Monitoring Plan" in table

    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    from pathlib import Path

    content = Path(info.value.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(content)))
    changed = [r for r in rows if r["event_type"] == "document.metadata_changed"]
    assert [(r["old_value"], r["new_value"]) for r in changed] == [
        ("Monitoring Plan draft", "Monitoring Plan")]
    assert {r["actor"] for r in rows} == {"Sam Specialist"}
