"""A CRA records a visit with findings and an action item; the report is generated, filed at
the Monitoring Visit Report artifact and signed by the CRA then the manager."""

from __future__ import annotations

from datetime import timedelta

import pytest

from ctms.monitoring import services as mon
from ctms.monitoring.models import ActionItem, MonitoringVisit
from etmf.errors import InvalidTransition, ValidationError
from tests.conftest import PASSWORD
from tests.integration.signing_workflow.conftest import enrol, login_as, post_sign


def _run(world, user, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with world.uow(user.name, user.id) as uow:
        result = fn(uow, world.access(user), *args, **kwargs)
        uow.commit()
    return result


@pytest.fixture
def team(world, svc):  # type: ignore[no-untyped-def]
    admin = world.user("admin")
    manager = world.user("study_manager", name="Mara Manager")
    cra = world.user("cra", site="101", name="Cleo CRA")
    for person in (manager, cra):
        enrol(world, svc, admin, person)
    return manager, cra


def _recorded_visit(world, cra, today):  # type: ignore[no-untyped-def]
    visit = _run(world, cra, mon.plan_visit, site_id=world.site_ids["101"], kind="routine",
                 mode="on_site", planned_on=today, cra_user_id=cra.id)
    _run(world, cra, mon.record_visit, visit, mon.VisitRecord(
        visited_on=today, attendees="Dr Weber (PI), N. Nurse", subjects_reviewed="101-001",
        documents_reviewed="ISF, consent forms", summary="Routine visit.",
        findings=(mon.NewFinding("consent", "major", "ICF v2 not used for 101-001"),
                  mon.NewFinding("essential_documents", "minor", "CV of SI not signed")),
        action_items=(mon.NewActionItem("Re-consent 101-001 on ICF v2", "Dr Weber",
                                        today + timedelta(days=14)),)))
    return visit


@pytest.mark.req("FR-MON-1")
@pytest.mark.req("SIG-7")
def test_the_report_is_filed_at_the_mvr_artifact_and_signed_by_cra_then_manager(
        world, svc, clock, team, app):
    from etmf.documents.models import Document
    from etmf.workflows.models import SignatureRequest

    manager, cra = team
    today = clock.now().date()
    visit_id = _recorded_visit(world, cra, today)
    with svc.db.read_session() as s:
        visit = s.get(MonitoringVisit, visit_id)
        pdf = mon.report_pdf(s, visit, cra.name)
    doc_id = _run(world, cra, mon.file_report, visit_id,
                  file=world.store_file(pdf, "mvr.pdf"), manager_user_id=manager.id,
                  link=lambda rid: f"http://etmf.test/signatures/requests/{rid}/sign",
                  notify=svc.mailer.send)
    with svc.db.read_session() as s:
        doc = s.get(Document, doc_id)
        assert (doc.artifact_id, doc.artifact_number, doc.zone) == ("107", "05.04.03", "05")
        visit = s.get(MonitoringVisit, visit_id)
        assert visit.status == "reported" and visit.report_document_id == doc_id
        request_id = visit.signature_request_id
    # The manager may not sign before the CRA (sequential).
    refused = post_sign(login_as(app, manager), request_id, password=PASSWORD)
    assert "not your turn" in refused.get_data(as_text=True)
    signed = post_sign(login_as(app, cra), request_id, password=PASSWORD)
    assert signed.status_code == 302, signed.get_data(as_text=True)[-3000:]
    assert post_sign(login_as(app, manager), request_id,
                     password=PASSWORD).status_code == 302
    with svc.db.read_session() as s:
        request = s.get(SignatureRequest, request_id)
        assert request.status == "completed"
        assert [(x.printed_name, x.meaning, x.status) for x in request.signers] == [
            ("Cleo CRA", "author", "signed"), ("Mara Manager", "review", "signed")]
    from etmf.audit.service import replay_and_compare

    with svc.db.read_session() as s:
        assert replay_and_compare(s) == []


def test_a_visit_is_recorded_once_and_the_report_needs_the_record(world, svc, clock, team):
    manager, cra = team
    today = clock.now().date()
    visit = _run(world, cra, mon.plan_visit, site_id=world.site_ids["101"], kind="routine",
                 mode="remote", planned_on=today, cra_user_id=cra.id)
    with pytest.raises(InvalidTransition, match="Record the visit"):
        _run(world, cra, mon.file_report, visit, file=world.store_file(b"%PDF-1.4"),
             manager_user_id=manager.id, link=str, notify=svc.mailer.send)
    with pytest.raises(ValidationError, match="Finding 1 needs a category"):
        _run(world, cra, mon.record_visit, visit, mon.VisitRecord(
            visited_on=today, attendees="PI", findings=(mon.NewFinding("?", "minor", "x"),)))
    visit = _recorded_visit(world, cra, today)
    with pytest.raises(InvalidTransition, match="already recorded"):
        _run(world, cra, mon.record_visit, visit, mon.VisitRecord(visited_on=today,
                                                                  attendees="PI"))


@pytest.mark.req("FR-MON-1")
def test_action_items_become_overdue_and_the_next_visit_is_due_by_the_rule(
        world, svc, clock, team):
    from etmf.studies.models import Site

    manager, cra = team
    today = clock.now().date()
    _run(world, manager, mon.set_rule, world.study_id, 4)
    _recorded_visit(world, cra, today)
    with svc.db.read_session() as s:
        site = s.get(Site, world.site_ids["101"])
        assert mon.next_visit_due(s, site) == today + timedelta(weeks=4)
        assert mon.overdue_action_items(s, site.id, today + timedelta(days=14)) == []
        (item,) = mon.overdue_action_items(s, site.id, today + timedelta(days=15))
    clock.advance(timedelta(days=15))
    _run(world, cra, mon.close_action_item, item.id)
    with svc.db.read_session() as s:
        assert s.get(ActionItem, item.id).status == "closed"
