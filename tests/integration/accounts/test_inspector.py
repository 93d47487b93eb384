"""Inspectors: read-only, one study, inside a time window; every view audited (ACC-3)."""

from __future__ import annotations

import hashlib
import io
from datetime import timedelta

import pytest

from tests.integration.accounts.conftest import events_of, post_form, try_sign_in


@pytest.fixture
def team(world):  # type: ignore[no-untyped-def]
    class Team:
        specialist = world.user("tmf_specialist")
        qc = world.user("qc_reviewer")
    return Team


@pytest.mark.req("FR-INSP-1")
@pytest.mark.req("ACC-3")
def test_inspector_cannot_sign_in_before_the_window_and_is_told_when_it_opens(
        make_inspector, client, clock):
    start = clock.now() + timedelta(days=3)
    inspector, _ = make_inspector(starts=start, ends=start + timedelta(days=2))
    response = try_sign_in(client, inspector.email)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Your inspection access to TST-001 is valid from 2026-11-29 09:30 UTC" in body
    assert "to 2026-12-01 09:30 UTC" in body
    assert client.get("/").status_code == 302
    # A wrong password tells nothing about the window.
    wrong = try_sign_in(client, inspector.email, "wrong-password-123").get_data(as_text=True)
    assert "inspection access" not in wrong


@pytest.mark.req("FR-INSP-1")
@pytest.mark.req("ACC-3")
def test_inspector_cannot_sign_in_after_the_window(make_inspector, client, clock):
    inspector, _ = make_inspector(ends=clock.now() + timedelta(hours=4))
    clock.advance(timedelta(hours=5))
    body = try_sign_in(client, inspector.email).get_data(as_text=True)
    assert "has ended" in body
    assert client.get("/").status_code == 302


@pytest.mark.req("ACC-3")
def test_a_session_ends_when_the_window_closes(make_inspector, login, clock, world):
    inspector, _ = make_inspector(ends=clock.now() + timedelta(minutes=10))
    client = login(inspector)
    assert client.get(f"/studies/{world.study_id}").status_code == 200
    clock.advance(timedelta(minutes=11))
    response = client.get(f"/studies/{world.study_id}")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "has ended" in client.get("/login").get_data(as_text=True)


@pytest.mark.req("ACC-3")
@pytest.mark.req("AUD-1")
def test_every_document_an_inspector_opens_is_audited_without_touching_the_document(
        make_inspector, login, world, svc, team):
    doc_id = world.document(team.specialist, title="Protocol", state="approved", qc=team.qc)
    before = [e.seq for e in events_of(svc, "document", doc_id)]
    inspector, _ = make_inspector()
    client = login(inspector)
    page = client.get(f"/documents/{doc_id}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Protocol" in html
    for label in ('name="action"', "Send to QC", "Withdraw (obsolete)"):
        assert label not in html  # no edit buttons for an inspector
    client.get(f"/documents/{doc_id}")
    viewed = events_of(svc, "document_access", doc_id)
    assert [e.type for e in viewed] == ["document.viewed", "document.viewed"]
    assert viewed[0].actor_id == inspector.id and viewed[0].actor_name == inspector.name
    assert viewed[0].study_id == world.study_id
    assert [e.seq for e in events_of(svc, "document", doc_id)] == before  # version unmoved


@pytest.mark.req("FR-INSP-2")
@pytest.mark.req("ACC-3")
def test_downloaded_pdf_is_an_inspection_copy_and_the_record_is_untouched(
        make_inspector, login, world, svc, team):
    from pypdf import PdfReader
    from sqlalchemy import select

    from etmf.documents.models import DocumentVersion

    doc_id = world.document(team.specialist, title="Monitoring plan", state="approved",
                            qc=team.qc)
    with svc.db.read_session() as s:
        version = s.scalar(select(DocumentVersion).where(DocumentVersion.document_id == doc_id))
    inspector, _ = make_inspector(name="Ingrid Inspector")
    client = login(inspector)
    response = client.get(f"/documents/{doc_id}/versions/{version.number}/download")
    assert response.status_code == 200
    data = response.get_data()
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages)
    assert "Inspection copy — Ingrid Inspector — 2026-11-26 09:30:00 UTC" in text
    assert int(response.headers["Content-Length"]) == len(data)
    with svc.blobs.open(version.sha256) as fh:
        stored = fh.read()
    assert hashlib.sha256(stored).hexdigest() == version.sha256
    assert data.startswith(stored)  # the mark is an update appended to a copy
    downloaded = events_of(svc, "document_access", doc_id)[-1]
    assert downloaded.type == "document.downloaded"
    assert '"watermarked":true' in downloaded.payload


def test_other_users_download_the_record_unmarked(world, login, svc, team):
    doc_id = world.document(team.specialist, title="Plain", state="approved", qc=team.qc)
    client = login(team.qc)
    data = client.get(f"/documents/{doc_id}/versions/1/download").get_data()
    assert b"Inspection copy" not in data
    assert events_of(svc, "document_access", doc_id) == []


@pytest.mark.req("ACC-3")
def test_inspector_writes_are_refused_whatever_the_route(make_inspector, login, world, team):
    doc_id = world.document(team.specialist, title="Protocol", state="approved", qc=team.qc)
    inspector, _ = make_inspector()
    client = login(inspector)
    for url, data in ((f"/documents/{doc_id}/transition", {"action": "withdraw", "version": 3,
                                                           "reason": "x"}),
                      (f"/studies/{world.study_id}/file", {}),
                      ("/account/tokens", {"name": "t", "days": 5}),
                      ("/admin/users", {}),
                      ("/api/v1/me", {})):
        response = post_form(client, url, data)
        assert response.status_code == 403, url
        assert "read-only" in response.get_data(as_text=True)


@pytest.mark.req("ACC-3")
@pytest.mark.req("ACC-2")
def test_zone_and_site_limits_hide_other_documents(make_inspector, login, world, team):
    trial_doc = world.document(team.specialist, title="Protocol", artifact="02.01.02",
                               state="approved", qc=team.qc)
    site_101 = world.document(team.specialist, title="CV 101", artifact="05.02.04",
                              level="site", site="101", state="approved", qc=team.qc)
    site_102 = world.document(team.specialist, title="CV 102", artifact="05.02.04",
                              level="site", site="102", state="approved", qc=team.qc)
    inspector, _ = make_inspector(zones=("05",), sites=("101",))
    client = login(inspector)
    assert client.get(f"/documents/{site_101}").status_code == 200
    assert client.get(f"/documents/{site_102}").status_code == 404
    assert client.get(f"/documents/{trial_doc}").status_code == 404


@pytest.mark.req("ACC-2")
def test_inspector_of_another_study_sees_nothing_of_this_one(make_inspector, login, world,
                                                            team, svc):
    from etmf.studies.services import NewStudy, create_study

    doc_id = world.document(team.specialist, title="Protocol", state="approved", qc=team.qc)
    inspector, grant_id = make_inspector()
    with world.uow() as uow:
        other = create_study(uow, NewStudy(protocol_number="OTH-9", title="Other", phase="I",
                                           sponsor="S"))
        uow.commit()
    from etmf.accounts.services import revoke_inspection

    with world.uow() as uow:
        revoke_inspection(uow, grant_id, reason="wrong study")
        uow.commit()
    from etmf.accounts.services import NewInspection, grant_inspection

    with world.uow() as uow:
        grant_inspection(uow, NewInspection(user_id=inspector.id, study_id=other,
                                            starts_at=svc.clock.now(),
                                            ends_at=svc.clock.now() + timedelta(days=1)))
        uow.commit()
    client = login(inspector)
    assert client.get(f"/studies/{world.study_id}").status_code == 404
    assert client.get(f"/documents/{doc_id}").status_code == 404
    assert "TST-001" not in client.get("/").get_data(as_text=True)
    assert [s["protocol_number"] for s in client.get("/api/v1/studies").json["studies"]] == \
        ["OTH-9"]


@pytest.mark.req("FR-INSP-1")
@pytest.mark.req("ACC-3")
@pytest.mark.req("AUD-1")
def test_administrator_grants_inspector_access_through_the_page(world, login, svc):
    from etmf.accounts.services import NewUser, create_user

    admin = world.user("admin")
    with world.app.app_context(), world.uow() as uow:
        inspector = create_user(uow, NewUser(email="ines@agency.example", full_name="Ines Ispe",
                                             password="Correct-Horse-Battery-9"))
        inspector_id = inspector.id
        uow.commit()
    client = login(admin)
    page = client.get("/admin/inspections").get_data(as_text=True)
    assert "Ines Ispe" in page
    bad = post_form(client, "/admin/inspections",
                    {"user_id": inspector_id, "study_id": world.study_id,
                     "starts_at": "2026-11-27T09:00", "ends_at": "2026-11-26T17:00"},
                    page="/admin/inspections")
    assert bad.status_code == 400
    assert "must be after its start" in bad.get_data(as_text=True)
    response = post_form(client, "/admin/inspections",
                         {"user_id": inspector_id, "study_id": world.study_id,
                          "starts_at": "2026-11-27T09:00", "ends_at": "2026-11-28T17:00",
                          "zones": ["01", "05"], "reason": "FDA notice 2026-114"},
                         page="/admin/inspections")
    assert response.status_code == 302
    listing = client.get("/admin/inspections").get_data(as_text=True)
    assert "2026-11-27 09:00" in listing and "zones 01, 05" in listing and "Upcoming" in listing
    (granted,) = [e for e in events_of(svc, "inspector_grant", 1)]
    assert granted.type == "inspection.granted"
    assert granted.reason == "FDA notice 2026-114" and granted.actor_id == admin.id
    assert '"starts_at":"2026-11-27T09:00:00.000000Z"' in granted.payload


def test_a_member_cannot_be_made_an_inspector(world, login):
    admin = world.user("admin")
    specialist = world.user("tmf_specialist")
    client = login(admin)
    response = post_form(client, "/admin/inspections",
                         {"user_id": specialist.id, "study_id": world.study_id,
                          "starts_at": "2026-11-27T09:00", "ends_at": "2026-11-28T17:00"},
                         page="/admin/inspections")
    assert response.status_code == 400
    assert "inspector accounts only" in response.get_data(as_text=True)
