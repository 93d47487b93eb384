"""SAE reporting clocks: 7 days for fatal/life-threatening unexpected, 15 for other
serious unexpected, configurable; states and reminders once per threshold."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ctms.safety import services as safety
from ctms.safety.models import SeriousAdverseEvent
from ctms.safety.reminders import send_sae_reminders


def _run(world, user, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    with world.uow(user.name, user.id) as uow:
        result = fn(uow, world.access(user), *args, **kwargs)
        uow.commit()
    return result


def _sae(svc, sae_id):  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return s.get(SeriousAdverseEvent, sae_id)


@pytest.mark.req("FR-MON-2")
def test_a_fatal_sae_is_due_in_7_days_overdue_on_day_8_with_one_mail_per_threshold(
        world, svc, clock):
    manager = world.user("study_manager", name="Mara Manager")
    staff = world.user("site_staff", site="101")
    today = clock.now().date()
    sae_id = _run(world, staff, safety.report_sae, safety.NewSae(
        site_id=world.site_ids["101"], term="Cardiac arrest", seriousness="Death",
        awareness_on=today, fatal=True))
    sae = _sae(svc, sae_id)
    assert sae.clock_days == 7 and sae.due_on == today + timedelta(days=7)
    assert safety.clock_state(sae, today) == "due in 7 days"

    mails = []
    start = clock.now()
    for day in range(0, 11):
        clock.set(start + timedelta(days=day))
        before = len(svc.mailer.sent)
        send_sae_reminders(svc)
        send_sae_reminders(svc)  # a second run the same day sends nothing more
        mails += [(day, m.subject) for m in svc.mailer.sent[before:]]
    assert safety.clock_state(_sae(svc, sae_id), today + timedelta(days=8)) == "overdue by 1 day"
    assert [d for d, _s in mails] == [0, 4, 6, 7, 8]  # thresholds 7, 3, 1, 0 and -1 days
    assert mails[0][1].startswith("SAE report due in 7 days: Cardiac arrest")
    assert mails[-1][1].startswith("SAE report overdue by 1 day")
    assert all(manager.email in m.to for m in svc.mailer.sent[-5:])


@pytest.mark.req("FR-MON-2")
def test_other_serious_unexpected_is_15_days_expected_has_no_clock_and_clocks_are_per_study(
        world, svc, clock):
    manager = world.user("study_manager")
    today = clock.now().date()
    other = _run(world, manager, safety.report_sae, safety.NewSae(
        site_id=world.site_ids["102"], term="Pneumonia", seriousness="Hospitalisation",
        awareness_on=today - timedelta(days=2)))
    expected = _run(world, manager, safety.report_sae, safety.NewSae(
        site_id=world.site_ids["102"], term="Neutropenia", seriousness="Hospitalisation",
        awareness_on=today, expected=True))
    assert _sae(svc, other).due_on == today + timedelta(days=13)
    assert safety.clock_state(_sae(svc, expected), today) == "no expedited report"
    _run(world, manager, safety.set_clock, world.study_id, fatal_days=5, other_days=10)
    lt = _run(world, manager, safety.report_sae, safety.NewSae(
        site_id=world.site_ids["102"], term="Anaphylaxis", seriousness="Life-threatening",
        awareness_on=today, life_threatening=True))
    assert _sae(svc, lt).clock_days == 5


@pytest.mark.req("FR-MON-2")
def test_submission_files_the_report_in_zone_07_and_closes_the_clock(world, svc, clock):
    from etmf.documents.models import Document
    from tests.conftest import make_pdf

    manager = world.user("study_manager")
    today = clock.now().date()
    sae_id = _run(world, manager, safety.report_sae, safety.NewSae(
        site_id=world.site_ids["101"], term="Stroke", seriousness="Hospitalisation",
        awareness_on=today - timedelta(days=3), life_threatening=True))
    doc_id = _run(world, manager, safety.record_submission, sae_id, submitted_on=today,
                  report=world.store_file(make_pdf("SAE report"), "sae.pdf"))
    sae = _sae(svc, sae_id)
    assert sae.report_document_id == doc_id
    assert safety.clock_state(sae, today + timedelta(days=30)) == "submitted on time"
    with svc.db.read_session() as s:
        doc = s.get(Document, doc_id)
        assert (doc.zone, doc.artifact_number) == ("07", "07.02.02")
    assert send_sae_reminders(svc) == []


def test_a_monitor_cannot_report_an_sae(world):
    from etmf.errors import Forbidden

    monitor = world.user("monitor", site="101")
    with pytest.raises(Forbidden):
        _run(world, monitor, safety.report_sae, safety.NewSae(
            site_id=world.site_ids["101"], term="x", seriousness="Death",
            awareness_on=date(2026, 11, 1)))
