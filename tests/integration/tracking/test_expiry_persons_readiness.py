"""Expiry views, people's documents reused across sites, site gaps and readiness."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from etmf.tracking import services as tracking
from etmf.tracking.expiry import expiring_documents
from etmf.tracking.readiness import Gap, readiness, site_gaps, study_site_gaps
from etmf.tracking.services import Scope


def assert_study_gaps_are_each_sites(tracker, today: date) -> None:
    """The heat map's one-pass ``study_site_gaps`` finds what ``site_gaps`` finds site by
    site, for the whole study and for some of its sites."""
    w = tracker.w
    one_by_one = {sid: tracker.read(site_gaps, sid, today) for sid in w.site_ids.values()}
    assert tracker.read(study_site_gaps, w.study_id, today) == {
        sid: gaps for sid, gaps in one_by_one.items() if gaps}
    some = [w.site_ids["101"], w.site_ids["201"]]
    assert tracker.read(study_site_gaps, w.study_id, today, some) == {
        sid: one_by_one[sid] for sid in some if one_by_one[sid]}


@pytest.mark.req("FR-TRACK-3")
def test_cv_expiring_in_29_days_is_in_the_30_day_view_then_expired(tracker, clock):
    w = tracker.w
    today = clock.now().date()
    cv = tracker.file("05.02.04", site="101", document_date=today - timedelta(days=10),
                      expiry_date=today + timedelta(days=29))
    tracker.approve(cv)
    # Validity rule: a lab's normal ranges (365 days by default) dated 300 days ago.
    ranges = tracker.file("08.01.04", site="101", document_date=today - timedelta(days=300))
    tracker.approve(ranges)
    in30 = tracker.read(expiring_documents, w.study_id, today, within_days=30)
    assert [(e.document_id, e.days_left) for e in in30] == [(cv, 29)]
    in90 = tracker.read(expiring_documents, w.study_id, today, within_days=90)
    assert [e.document_id for e in in90] == [cv, ranges]
    assert tracker.read(expiring_documents, w.study_id, today, expired=True) == []
    later = today + timedelta(days=30)
    assert [e.document_id for e in tracker.read(expiring_documents, w.study_id, later,
                                                expired=True)] == [cv]


@pytest.mark.req("FR-TRACK-4")
@pytest.mark.req("FR-TRACK-6")
def test_renewing_a_persons_cv_clears_the_flag_at_every_site(tracker, clock):
    w = tracker.w
    today = clock.now().date()
    for site in ("101", "201"):
        tracker.run(tracking.add_entry, w.study_id, Scope("site", site_id=w.site_ids[site]),
                    "05.02.05", milestone="03")
    ada = tracker.run(tracking.create_person, name="Dr Ada Lovelace", email="ada@example.org",
                      site_id=w.site_ids["101"], role="Sub-Investigator")
    tracker.run(tracking.link_person_to_site, ada, w.site_ids["201"], "Sub-Investigator")
    old = tracker.file("05.02.05", site="101", document_date=date(2024, 1, 10),
                       person="Dr Ada Lovelace")  # 730-day validity: expired 2026-01-09
    tracker.approve(old)
    tracker.run(tracking.link_person_document, ada, old)
    for site in ("101", "201"):
        gaps = tracker.read(site_gaps, w.site_ids[site], today)
        assert gaps == [Gap("088", "Sub-Investigator Curriculum Vitae", "expired", old)] \
            if site == "101" else [g.problem for g in gaps] == ["expired"]
    assert_study_gaps_are_each_sites(tracker, today)  # a person's document, at two sites
    assert [e.document_id for e in tracker.read(expiring_documents, w.study_id, today,
                                                expired=True)] == [old]
    new = tracker.file("05.02.05", site="101", document_date=today - timedelta(days=1),
                       person="Dr Ada Lovelace", title="CV Ada 2026")
    tracker.approve(new)
    tracker.run(tracking.link_person_document, ada, new)
    for site in ("101", "201"):
        assert tracker.read(site_gaps, w.site_ids[site], today) == []
    assert tracker.read(expiring_documents, w.study_id, today, expired=True) == []


@pytest.mark.req("FR-TRACK-6")
def test_site_gaps_name_missing_and_unapproved_start_up_documents_only(tracker, clock):
    w = tracker.w
    s101 = Scope("site", site_id=w.site_ids["101"])
    tracker.run(tracking.add_entry, w.study_id, s101, "05.02.08", milestone="03")  # 1572
    tracker.run(tracking.add_entry, w.study_id, s101, "05.02.02", milestone="03")
    tracker.run(tracking.add_entry, w.study_id, s101, "05.04.01", milestone="11")  # not start-up
    tracker.run(tracking.add_entry, w.study_id, Scope("country", country_id=w.country_ids["DE"]),
                "03.01.01", milestone="01")
    draft = tracker.file("05.02.02", site="101")
    today = clock.now().date()
    gaps = tracker.read(site_gaps, w.site_ids["101"], today)
    assert {(g.artifact_id, g.problem, g.document_id) for g in gaps} == {
        ("091", "missing", None), ("085", "not approved", draft), ("052", "missing", None)}
    # Site 102 shares Germany's country-level gap; France's site 201 has nothing expected.
    assert [g.artifact_id for g in tracker.read(site_gaps, w.site_ids["102"], today)] == ["052"]
    assert tracker.read(site_gaps, w.site_ids["201"], today) == []
    assert_study_gaps_are_each_sites(tracker, today)  # site and country entries
    r = tracker.read(readiness, w.study_id, today, site_id=w.site_ids["101"])
    assert (len(r.missing), len(r.not_approved), r.ready) == (2, 1, False)


@pytest.mark.req("FR-TRACK-3")
def test_an_administrator_configures_the_validity_of_an_artifact(tracker, clock):
    from etmf.errors import Forbidden

    w = tracker.w
    today = clock.now().date()
    ranges = tracker.file("08.01.04", site="101", document_date=today - timedelta(days=40))
    tracker.approve(ranges)
    assert tracker.read(expiring_documents, w.study_id, today, expired=True) == []
    with pytest.raises(Forbidden):
        tracker.run(tracking.set_expiry_rule, "08.01.04", 30)
    tracker.run(tracking.set_expiry_rule, "08.01.04", 30, by=w.user("admin"))
    assert [e.days_left for e in tracker.read(expiring_documents, w.study_id, today,
                                              expired=True)] == [-10]
