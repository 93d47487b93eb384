"""Subjects: consent against the ICF in force, status, re-consent, visits, replay."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ctms.studyplan import services as plan
from ctms.subjects import services as subjects
from ctms.subjects.models import Subject, Visit
from etmf.errors import Forbidden, InvalidTransition, ValidationError


def _subject(svc, subject_id):  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return s.get(Subject, subject_id)


def _screen(ctms, number="101-001", on=None):  # type: ignore[no-untyped-def]
    return ctms.run(subjects.screen_subject, site_id=ctms.w.site_ids["101"], number=number,
                    screened_on=on, by=ctms.coordinator)


@pytest.mark.req("FR-CTMS-3")
def test_consent_on_an_outdated_icf_is_refused_with_the_reason(ctms, clock):
    sid = _screen(ctms)
    today = clock.now().date()
    with pytest.raises(subjects.ConsentRefused) as refused:
        ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v1"],
                 consented_on=today, by=ctms.coordinator)
    assert "ICF v1.0 was not the version approved and in force at site 101" in \
        refused.value.message
    assert "v2.0" in refused.value.message
    ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v2"], consented_on=today,
             by=ctms.coordinator)


@pytest.mark.req("FR-CTMS-3")
def test_consent_on_the_version_in_force_on_that_earlier_date_is_accepted(ctms):
    sid = _screen(ctms, on=date(2026, 3, 1))
    ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v1"],
             consented_on=date(2026, 3, 1), by=ctms.coordinator)
    with pytest.raises(subjects.ConsentRefused, match="No informed consent form"):
        sid2 = _screen(ctms, "101-002", on=date(2026, 1, 2))
        ctms.run(subjects.record_consent, sid2, icf_version_id=ctms.icf["v1"],
                 consented_on=date(2026, 1, 2), by=ctms.coordinator)


@pytest.mark.req("FR-CTMS-3")
def test_a_newly_activated_icf_flags_subjects_to_reconsent(ctms, svc):
    sid = _screen(ctms, on=date(2026, 3, 1))
    ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v1"],
             consented_on=date(2026, 3, 1), by=ctms.coordinator)
    with svc.db.read_session() as s:
        subject = s.get(Subject, sid)
        assert subjects.needs_reconsent(s, subject, date(2026, 6, 14)) is None
        assert subjects.needs_reconsent(s, subject, date(2026, 6, 15)).label == "v2.0"
    ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v2"],
             consented_on=date(2026, 6, 20), by=ctms.coordinator)
    with svc.db.read_session() as s:
        assert subjects.needs_reconsent(s, s.get(Subject, sid), date(2026, 11, 1)) is None


def test_enrollment_needs_consent_and_screen_failure_needs_a_reason(ctms, svc, clock):
    sid = _screen(ctms)
    with pytest.raises(subjects.ConsentRefused, match="no informed consent"):
        ctms.run(subjects.change_status, sid, "enrolled", by=ctms.coordinator)
    with pytest.raises(ValidationError, match="reason"):
        ctms.run(subjects.change_status, sid, "screen_failed", by=ctms.coordinator)
    ctms.run(subjects.change_status, sid, "screen_failed", reason="Exclusion 4",
             by=ctms.coordinator)
    assert _subject(svc, sid).status == "screen_failed"
    with pytest.raises(InvalidTransition):
        ctms.run(subjects.change_status, sid, "enrolled", by=ctms.coordinator)


def test_site_staff_cannot_touch_subjects_of_another_site(ctms, world):
    from ctms.sites.services import change_site_status
    from etmf.studies.models import Site

    ctms.activate("102")
    sid = ctms.run(subjects.screen_subject, site_id=world.site_ids["102"], number="102-001")
    with pytest.raises(Forbidden):
        ctms.run(subjects.change_status, sid, "screen_failed", reason="x", by=ctms.coordinator)
    with pytest.raises(Forbidden):
        ctms.run(subjects.screen_subject, site_id=world.site_ids["102"], number="102-009",
                 by=ctms.coordinator)
    assert change_site_status and Site  # the site was opened through the lifecycle


@pytest.mark.req("FR-CTMS-5")
def test_visits_are_planned_from_the_schedule_and_out_of_window_is_flagged(ctms, world, svc,
                                                                           clock):
    for spec in (subjects.VisitSpec("V1", "Baseline", 0), subjects.VisitSpec("V2", "Week 2", 14,
                                                                             2, 2)):
        ctms.run(subjects.define_visit, world.study_id, spec)
    enrolled_on = date(2026, 10, 1)
    sid = _screen(ctms, on=enrolled_on)
    ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v2"],
             consented_on=enrolled_on, by=ctms.coordinator)
    ctms.run(subjects.change_status, sid, "enrolled", effective_on=enrolled_on,
             by=ctms.coordinator)
    with svc.db.read_session() as s:
        visits = {v.code: v for v in s.query(Visit).filter_by(subject_id=sid)}
    assert visits["V2"].due_on == enrolled_on + timedelta(days=14)
    assert (visits["V2"].window_start, visits["V2"].window_end) == (date(2026, 10, 13),
                                                                    date(2026, 10, 17))
    assert ctms.run(subjects.complete_visit, visits["V1"].id, completed_on=enrolled_on,
                    by=ctms.coordinator) is False
    assert ctms.run(subjects.complete_visit, visits["V2"].id, completed_on=date(2026, 10, 20),
                    by=ctms.coordinator) is True
    with svc.db.read_session() as s:
        v2 = s.get(Visit, visits["V2"].id)
        assert (v2.status, v2.out_of_window, v2.completed_on) == ("completed", True,
                                                                  date(2026, 10, 20))


def test_everything_replays_from_the_audit_log(ctms, world, svc):
    from ctms.randomization import services as rnd
    from etmf.audit.service import replay_and_compare

    randomizer = world.user("randomizer")
    ctms.run(rnd.generate_list, world.study_id, arms=["A", "B"], strata=["all"], block_size=4,
             blocks_per_stratum=2, seed="replay", by=randomizer)
    ctms.run(subjects.define_visit, world.study_id, subjects.VisitSpec("V1", "Baseline", 0))
    sid = _screen(ctms)
    ctms.run(subjects.record_consent, sid, icf_version_id=ctms.icf["v2"],
             consented_on=date(2026, 11, 26), by=ctms.coordinator)
    ctms.run(subjects.change_status, sid, "enrolled", by=ctms.coordinator)
    ctms.run(rnd.randomize_subject, sid, stratum="all", by=ctms.coordinator)
    ctms.run(plan.set_study_plan, world.study_id, plan.PlanChange(planned_enrollment=10))
    with svc.db.read_session() as s:
        assert replay_and_compare(s) == []
