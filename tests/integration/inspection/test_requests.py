"""Inspectors raise requests; the study team answers; both are audited (FR-INSP-3)."""

from __future__ import annotations

import pytest

from tests.conftest import csrf_from
from tests.integration.accounts.conftest import events_of, try_sign_in


@pytest.fixture
def doc(world):  # type: ignore[no-untyped-def]
    author = world.user("tmf_specialist", name="Ada Author")
    qc = world.user("qc_reviewer", name="Quentin QC")
    return world.document(author, title="Monitoring plan", state="approved", qc=qc)


@pytest.mark.req("FR-INSP-3")
def test_inspector_raises_a_request_and_the_specialist_answers_it(app, world, doc, svc,
                                                                   make_inspector, login):
    inspector, _grant = make_inspector()
    client = login(inspector)
    page = client.get(f"/documents/{doc}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="inline-pdf"' in html
    assert "Ask the study team about this document" in html
    response = client.post(f"/studies/{world.study_id}/inspection/requests", data={
        "csrf_token": csrf_from(html), "document_id": str(doc), "kind": "explanation",
        "subject": "Signature date", "text": "Why was the plan approved after the visit?"})
    assert response.status_code == 302
    listing = client.get(f"/studies/{world.study_id}/inspection/requests")
    assert "Why was the plan approved after the visit?" in listing.get_data(as_text=True)
    # An inspector still cannot change anything else.
    assert client.post(f"/documents/{doc}/transition", data={
        "csrf_token": csrf_from(html), "action": "withdraw", "version": "3",
        "reason": "x"}).status_code == 403

    specialist = world.user("tmf_specialist", name="Sam Specialist")
    client = app.test_client()
    assert try_sign_in(client, specialist.email).status_code == 302
    html = client.get(f"/studies/{world.study_id}/inspection/requests").get_data(as_text=True)
    assert "Answer" in html
    response = client.post("/inspection-requests/1/answer", data={
        "csrf_token": csrf_from(html), "version": "1",
        "answer": "The visit was a pre-study visit; see the approval minutes."})
    assert response.status_code == 302
    html = client.get(f"/studies/{world.study_id}/inspection/requests").get_data(as_text=True)
    assert "pre-study visit" in html and "Sam Specialist" in html
    types = [e.type for e in events_of(svc, "inspection_request", 1)]
    assert types == ["inspection.request_raised", "inspection.request_answered"]


def test_the_inspector_landing_page_counts_documents_by_zone(app, world, doc,
                                                            make_inspector, login):
    inspector, _grant = make_inspector()
    html = login(inspector).get(f"/studies/{world.study_id}/inspection").get_data(as_text=True)
    assert 'data-testid="total">1<' in html
    assert "Not computed for this study yet" in html


def test_a_monitor_cannot_raise_an_inspection_request(app, world, login):
    monitor = world.user("monitor")
    client = login(monitor)
    html = client.get(f"/studies/{world.study_id}/inspection/requests").get_data(as_text=True)
    response = client.post(f"/studies/{world.study_id}/inspection/requests", data={
        "csrf_token": csrf_from(html), "kind": "document", "subject": "x", "text": "y"})
    assert response.status_code == 403


def test_the_landing_page_shows_the_completeness_of_the_expected_documents(
        app, world, doc, make_inspector, login):
    from etmf.tracking.expected import entry_states
    from etmf.tracking.metrics import total
    from etmf.tracking.services import generate_edl

    manager = world.user("study_manager", name="Mia Manager")
    with app.app_context(), world.uow(manager.name, manager.id) as uow:
        generate_edl(uow, world.access(manager), world.study_id)
        uow.commit()
    from etmf.bootstrap import services

    svc = services(app)
    with svc.db.read_session() as s:
        expected = total(entry_states(s, world.study_id, svc.clock.now().date()))
    inspector, _grant = make_inspector()
    html = login(inspector).get(f"/studies/{world.study_id}/inspection").get_data(as_text=True)
    assert (f"{expected.percent}% complete: {expected.approved} of {expected.expected} "
            "expected documents approved") in html
    assert "Not computed for this study yet" not in html
