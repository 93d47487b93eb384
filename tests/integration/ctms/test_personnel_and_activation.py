"""The study page's key personnel (tracking persons with their CV, licence and training
state) and the ICF activation form."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from ctms.studyplan import services as plan
from ctms.subjects import services as subjects
from tests.conftest import csrf_from


@pytest.mark.req("FR-CTMS-10")
def test_manager_adds_key_personnel_and_sees_their_cv_and_licence_state(ctms, world, login):
    cv = world.document(ctms.manager, title="CV Ada Lovelace", artifact="05.02.05",
                        level="site", site="101", state="approved", qc=ctms.qc,
                        document_date=date(2026, 2, 1), expiry_date=date(2027, 1, 31))
    licence = world.document(ctms.manager, title="Licence Ada Lovelace", artifact="05.02.07",
                             level="site", site="101", state="approved", qc=ctms.qc,
                             document_date=date(2024, 10, 1), expiry_date=date(2026, 10, 1))
    client = login(ctms.manager)
    url = f"/ctms/studies/{world.study_id}"
    token = csrf_from(client.get(url).get_data(as_text=True))
    added = client.post(url + "/personnel", follow_redirects=True, data={
        "csrf_token": token, "site_id": world.site_ids["101"], "name": "Dr Ada Lovelace",
        "role": "Sub-Investigator", "email": "ada@example.org"})
    assert "Dr Ada Lovelace is key personnel of site 101." in added.get_data(as_text=True)
    from etmf.bootstrap import services
    from etmf.tracking.models import Person

    with services(world.app).db.read_session() as s:
        person = s.scalar(select(Person.id).where(Person.name == "Dr Ada Lovelace"))
    for doc in (cv, licence):
        client.post(url + "/personnel/documents", data={"csrf_token": token,
                                                        "person_id": person, "document_id": doc})
    html = client.get(url).get_data(as_text=True)
    row = html.split('data-person="Dr Ada Lovelace"')[1].split("</tr>")[0]
    assert "Sub-Investigator" in row
    assert "approved, valid until 2027-01-31" in row
    assert "expired on 2026-10-01" in row
    assert "missing" in row  # no training record


@pytest.mark.req("FR-CTMS-1")
@pytest.mark.req("FR-CTMS-3")
def test_activating_an_approved_icf_on_the_page_puts_it_in_force_and_flags_reconsent(
        ctms, world, login, svc):
    sid = ctms.run(subjects.screen_subject, site_id=world.site_ids["101"], number="101-077",
                   by=ctms.coordinator)
    ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v2"],
             consented_on=date(2026, 11, 26), by=ctms.coordinator)
    icf3_doc = world.document(ctms.manager, title="ICF v3", artifact="02.02.03",
                              state="approved", qc=ctms.qc)
    irb = world.document(ctms.manager, title="IRB approval v3", artifact="04.01.02",
                         level="site", site="101", state="approved", qc=ctms.qc)
    v3 = ctms.run(plan.register_version, world.study_id, kind="icf", label="v3.0",
                  document_id=icf3_doc)
    approval = ctms.run(plan.approve_version_at_site, site_id=world.site_ids["101"],
                        version_id=v3, approval_document_id=irb, approved_on=date(2026, 11, 20))
    client = login(ctms.manager)
    url = f"/ctms/studies/{world.study_id}"
    page = client.get(url).get_data(as_text=True)
    assert "Activate ICF v3.0 at site 101" in page
    too_early = client.post(url + "/approvals/activate", follow_redirects=True, data={
        "csrf_token": csrf_from(page), "approval_id": approval, "activated_on": "2026-11-01"})
    assert "cannot be activated before it was approved" in too_early.get_data(as_text=True)
    done = client.post(url + "/approvals/activate", follow_redirects=True, data={
        "csrf_token": csrf_from(page), "approval_id": approval, "activated_on": "2026-11-25"})
    assert "Informed consent form v3.0 is active at site 101 from 2026-11-25." in \
        done.get_data(as_text=True)
    with svc.db.read_session() as s:
        assert plan.version_in_force(s, world.site_ids["101"], "icf",
                                     date(2026, 11, 26)).label == "v3.0"  # type: ignore[union-attr]
        subject = s.get(subjects.Subject, sid)
        again = subjects.needs_reconsent(s, subject, date(2026, 11, 26))  # type: ignore[arg-type]
        assert again is not None and again.label == "v3.0"
