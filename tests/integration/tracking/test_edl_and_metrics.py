"""Expected documents, placeholders, completeness, overdue, timeliness and quality of a
hand-built study, against figures computed by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from etmf.tracking import metrics
from etmf.tracking import services as tracking
from etmf.tracking.expected import entry_states
from etmf.tracking.services import Scope

TODAY = date(2026, 11, 26)  # the frozen clock of the tests


@pytest.mark.req("FR-TRACK-1")
def test_generated_edl_expects_core_artifacts_at_every_place_and_keeps_edits(tracker):
    from etmf.reference_model import FilingLevel, load_reference_model
    from etmf.tracking.models import EdlEntry

    w = tracker.w
    added = tracker.run(tracking.generate_edl, w.study_id)
    model = load_reference_model()
    per = {lvl: sum(1 for a in model.core_artifacts() if lvl in model.levels_of(a))
           for lvl in FilingLevel}
    assert added == per["trial"] + 2 * per["country"] + 3 * per["site"]
    entries = tracker.read(lambda s: s.query(EdlEntry).filter_by(site_id=w.site_ids["101"]).all())
    pi_cv = next(e for e in entries if e.artifact_id == "087")
    assert (pi_cv.level, pi_cv.required_count, pi_cv.milestone) == ("site", 1, "03")
    tracker.run(tracking.change_entry, pi_cv.id, required_count=2, milestone="02")
    assert tracker.run(tracking.generate_edl, w.study_id) == 0  # idempotent, edits kept
    again = tracker.read(lambda s: s.get(EdlEntry, pi_cv.id))
    assert (again.required_count, again.milestone) == (2, "02")
    tracker.run(tracking.remove_entry, pi_cv.id, reason="PI CV held centrally")
    assert tracker.read(lambda s: s.get(EdlEntry, pi_cv.id)) is None


@pytest.mark.req("FR-TRACK-1")
def test_filing_a_matching_document_fills_the_edl_placeholder(tracker):
    from etmf.documents.models import Document

    w = tracker.w
    tracker.run(tracking.add_entry, w.study_id, Scope("site", site_id=w.site_ids["101"]),
                "05.02.04", milestone="03")
    assert tracker.run(tracking.create_placeholders, w.study_id) == 1
    assert tracker.run(tracking.create_placeholders, w.study_id) == 0
    placeholder = tracker.read(lambda s: s.query(Document).filter_by(status="placeholder").one().id)
    doc_id = tracker.file("05.02.04", site="101", title="CV Dr Ada", document_date=TODAY)
    assert doc_id == placeholder
    doc = tracker.read(lambda s: s.get(Document, doc_id))
    assert (doc.status, doc.title, doc.document_date) == ("draft", "CV Dr Ada", TODAY)
    # A second CV is a document of its own: the placeholder is filled already.
    assert tracker.file("05.02.04", site="101", title="CV 2") != placeholder


def _fixture_study(tracker, clock):  # type: ignore[no-untyped-def]
    """Trial: protocol ×1 (milestone 01). Site 101: PI CV ×1, Sub-I CVs ×2, FDA 1572 ×1 (03).
    Site 102: PI CV ×1 (03). Milestone 03 planned 2026-11-01 at 101, 2027-01-10 at 102."""
    w = tracker.w
    s101, s102 = (Scope("site", site_id=w.site_ids[n]) for n in ("101", "102"))
    tracker.run(tracking.add_entry, w.study_id, Scope("trial"), "02.01.02", milestone="01")
    tracker.run(tracking.add_entry, w.study_id, s101, "05.02.04", milestone="03")
    tracker.run(tracking.add_entry, w.study_id, s101, "05.02.05", required_count=2,
                milestone="03")
    tracker.run(tracking.add_entry, w.study_id, s101, "05.02.08", milestone="03")
    tracker.run(tracking.add_entry, w.study_id, s102, "05.02.04", milestone="03")
    tracker.run(tracking.set_milestone_dates, w.study_id, s101, "03",
                planned=date(2026, 11, 1), actual=None)
    tracker.run(tracking.set_milestone_dates, w.study_id, s102, "03",
                planned=date(2027, 1, 10), actual=None)
    tracker.run(tracking.set_targets, w.study_id, filing_days=10, approval_days=2)
    # Filed today (2026-11-26); approved 3 days later, except the sub-I CV: the next day.
    protocol = tracker.file("02.01.02", document_date=date(2026, 11, 20))      # lag 6
    pi_cv = tracker.file("05.02.04", site="101", document_date=date(2026, 10, 1))  # lag 56
    sub_cv = tracker.file("05.02.05", site="101", document_date=date(2026, 11, 24))  # lag 2
    tracker.file("05.02.08", site="101", document_date=date(2026, 11, 25))    # lag 1, draft
    rejected = tracker.file("05.02.05", site="101", document_date=date(2026, 11, 26))  # lag 0
    tracker.reject(rejected)
    clock.advance(timedelta(days=1))
    tracker.approve(sub_cv)                                                    # 1 day
    clock.advance(timedelta(days=2))
    tracker.approve(protocol)                                                  # 3 days
    tracker.approve(pi_cv)                                                     # 3 days
    return w


@pytest.mark.req("FR-TRACK-2")
def test_completeness_overdue_timeliness_and_quality_match_hand_computation(tracker, clock):
    w = _fixture_study(tracker, clock)
    today = clock.now().date()  # 2026-11-29
    states = tracker.read(entry_states, w.study_id, today)
    study = metrics.total(states)
    # expected 1 + (1 + 2 + 1) + 1 = 6; approved 1 (protocol) + 1 (PI CV) + 1 (one sub-I CV)
    assert (study.expected, study.approved, study.percent) == (6, 3, 50)
    # overdue: at 101 the sub-I CVs (1 of 2) and the 1572 (draft); 102's date is ahead
    assert study.overdue == 2
    by_site = {g.key: g for g in metrics.completeness(
        states, lambda s: s.entry.site_id, lambda k: str(k))}
    assert (by_site[w.site_ids["101"]].expected, by_site[w.site_ids["101"]].approved) == (4, 2)
    assert by_site[w.site_ids["102"]].percent == 0
    assert by_site[None].percent == 100
    by_zone = {g.key: g.percent for g in metrics.completeness(
        states, lambda s: s.entry.zone, str)}
    assert by_zone == {"02": 100, "05": 2 * 100 // 5}
    t = tracker.read(metrics.timeliness, w.study_id, 10, 2)
    # filing lags 6, 56, 2, 1, 0: four within 10 days, mean 65/5 = 13
    assert (t.filed, t.filed_on_time, t.mean_filing_days) == (5, 4, 13)
    # approval lags 1, 3, 3: one within 2 days, mean 7/3 ≈ 2
    assert (t.approved, t.approved_on_time, t.mean_approval_days) == (3, 1, 2)
    q = tracker.read(metrics.quality, w.study_id)
    # one rejection, three approvals: 25 %; its issue is still open
    assert (q.rejections, q.approvals, q.rejection_percent, q.open_issues) == (1, 3, 25, 1)


@pytest.mark.req("FR-TRACK-1")
def test_replaying_the_log_rebuilds_every_tracking_table(tracker, clock, svc):
    from etmf.audit.service import replay_and_compare
    from etmf.tracking.reminders import send_reminders

    w = _fixture_study(tracker, clock)
    tracker.run(tracking.generate_edl, w.study_id)
    tracker.run(tracking.create_placeholders, w.study_id, site_id=w.site_ids["201"])
    tracker.file("05.02.04", site="201", title="Fills a placeholder")
    person = tracker.run(tracking.create_person, name="Dr Bo", site_id=w.site_ids["102"],
                         role="PI")
    tracker.run(tracking.link_person_document, person, 2)
    tracker.run(tracking.set_milestone_dates, w.study_id, Scope("trial"), "01",
                planned=date(2026, 12, 1), actual=None)
    entry = tracker.read(entry_states, w.study_id, TODAY)[0].entry.id
    tracker.run(tracking.change_entry, entry, required_count=3)
    tracker.run(tracking.remove_entry, entry, reason="not needed")
    send_reminders(svc)
    with svc.db.read_session() as session:
        assert replay_and_compare(session) == []


def test_missing_counts_documents_without_any_file_and_not_approved_the_rest(tracker, clock):
    w = _fixture_study(tracker, clock)
    study = metrics.total(tracker.read(entry_states, w.study_id, clock.now().date()))
    # 6 expected, 3 approved; filed but not approved: the 1572 draft and the rejected sub-I CV
    assert (study.missing, study.not_approved) == (1, 2)
