"""The dashboard's SQL summary and its caches give exactly the figures of the entry-by-entry
computation (``entry_states`` summed by ``metrics.group_by``), whatever the data: people's
documents counted at several sites, expiry by own date and by validity, milestone dates at
site, country and study, scopes; and the caches follow every new document event."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from etmf.tracking import metrics, summary
from etmf.tracking import services as tracking
from etmf.tracking.expected import counts_are_kept, entry_states
from etmf.tracking.models import (
    CacheStamp,
    DocCount,
    DocDays,
    EdlEntry,
    EdlGroup,
    EdlGroupExpiry,
    Person,
    QcWait,
)
from etmf.tracking.services import Scope

from .test_edl_and_metrics import _fixture_study

KEYS = {"study": lambda s: "study", "zone": lambda s: s.entry.zone,
        "site": lambda s: s.entry.site_id, "country": lambda s: s.entry.country_id,
        "milestone": lambda s: s.entry.milestone or ""}
LABELS = dict.fromkeys(KEYS, str)


def _figures(groups):  # type: ignore[no-untyped-def]
    return {name: sorted((str(g.key), g.expected, g.approved, g.missing, g.not_approved,
                          g.overdue, g.expired, g.entries) for g in found)
            for name, found in groups.items()}


CACHES = (DocCount, DocDays, EdlGroup, EdlGroupExpiry, QcWait)


def _caches(s, study_id):  # type: ignore[no-untyped-def]
    """The study's cache rows, without the arbitrary group row numbers."""
    found = {}
    for model in CACHES:
        t = model.__table__
        cols = [c for c in t.columns if c.name != "row"]
        found[t.name] = sorted(tuple(str(v) for v in r) for r in s.execute(
            select(*cols).where(t.c.study_id == study_id)))
    return found


def _equal_to_rebuild(svc, study_id):  # type: ignore[no-untyped-def]
    """The incrementally kept caches are exactly what a rebuild from scratch makes."""
    with svc.db.write_session() as s:
        kept = _caches(s, study_id)
        summary.rebuild(s, study_id)
        rebuilt = _caches(s, study_id)
        s.rollback()
    assert kept == rebuilt
    assert kept["tracking_edl_groups"]  # not trivially equal


def _same(tracker, svc, day, *, kept: bool = True, **scope):  # type: ignore[no-untyped-def]
    """The figures from the caches equal the entry-by-entry ones (and, once the caches
    exist, the events kept them: nothing is recomputed before reading)."""
    w = tracker.w
    existed = tracker.read(summary.is_fresh, w.study_id)
    assert summary.refresh(svc.db.write_session, w.study_id) is not existed
    if kept and existed:
        _equal_to_rebuild(svc, w.study_id)

    def by_entries(s):  # type: ignore[no-untyped-def]
        states = entry_states(s, w.study_id, day, kept=False)
        if scope.get("site_ids") is not None:
            states = [x for x in states if x.entry.site_id is None
                      or x.entry.site_id in scope["site_ids"]]
        if scope.get("zones") is not None:
            states = [x for x in states if x.entry.zone in scope["zones"]]
        return metrics.group_by(states, KEYS, LABELS)

    expected = _figures(tracker.read(by_entries))
    got = _figures(tracker.read(summary.summary, w.study_id, day, LABELS, **scope))
    assert got == expected
    _kept_states_equal(tracker, day)
    return got


def _state(x):  # type: ignore[no-untyped-def]
    return (x.entry.id, x.filed, x.approved, x.in_qc, x.expires_on, x.due, x.counted,
            x.complete, x.expired, x.overdue, x.problem, x.missing, x.not_approved)


def _kept_states_equal(tracker, day):  # type: ignore[no-untyped-def]
    """``entry_states`` read through the kept counts equals the one summing the documents,
    entry by entry, for the whole study and for each way of choosing entries; asked for the
    entries with a problem, each gives exactly those."""
    w = tracker.w
    assert tracker.read(counts_are_kept, w.study_id)  # the kept path is the one compared
    site, country = w.site_ids["201"], w.country_ids["DE"]
    artifacts = tracker.read(lambda s: set(s.scalars(
        select(EdlEntry.artifact_id).where(EdlEntry.study_id == w.study_id,
                                           EdlEntry.site_id == site).limit(3))))
    for choice in ({}, {"site_id": site}, {"country_id": country},
                   {"country_id": country, "levels": ("country",)},
                   {"levels": ("site",), "site_ids": {site, w.site_ids["102"]}},
                   {"artifacts": artifacts}):
        kept, counted = ([_state(x) for x in tracker.read(
            entry_states, w.study_id, day, kept=flag, **choice)] for flag in (True, False))
        assert kept == counted, choice
        assert counted or choice == {"country_id": country, "levels": ("country",)}
        for flag in (True, False):  # the problems alone, chosen by the database or not
            assert [_state(x) for x in tracker.read(
                entry_states, w.study_id, day, kept=flag, problems_only=True, **choice)] \
                == [x for x in counted if x[10] is not None], (choice, flag)


def _rich_study(tracker, clock):  # type: ignore[no-untyped-def]
    w = _fixture_study(tracker, clock)
    today = clock.now().date()
    tracker.run(tracking.generate_edl, w.study_id)  # every other place: core artifacts
    tracker.run(tracking.set_milestone_dates, w.study_id, Scope("trial"), "03",
                planned=today - timedelta(days=5), actual=None)
    tracker.run(tracking.set_milestone_dates, w.study_id,
                Scope("country", country_id=w.country_ids["FR"]), "03",
                planned=today + timedelta(days=40), actual=None)
    ada = tracker.run(tracking.create_person, name="Dr Ada", site_id=w.site_ids["101"],
                      role="Sub-Investigator")
    tracker.run(tracking.link_person_to_site, ada, w.site_ids["201"], "Sub-Investigator")
    cv = tracker.file("05.02.05", site="101", document_date=today - timedelta(days=700),
                      person="Dr Ada")  # 730-day validity: expires in 30 days
    tracker.approve(cv)
    tracker.run(tracking.link_person_document, ada, cv)
    licence = tracker.file("05.02.04", site="102", expiry_date=today + timedelta(days=10))
    tracker.approve(licence)
    undated = tracker.file("05.02.04", site="201")  # validity, no date: never expires
    tracker.approve(undated)
    return w


@pytest.mark.req("FR-TRACK-2")
def test_sql_summary_equals_the_entry_by_entry_figures(tracker, clock, svc):
    w = _rich_study(tracker, clock)
    today = clock.now().date()
    expired = [_same(tracker, svc, day)["study"][0][6] for day in (
        today, today + timedelta(days=20), today + timedelta(days=60),
        today + timedelta(days=3000))]
    assert expired[0] < expired[1] < expired[2]  # the licence, then Ada's CV at two sites
    # The licence's last valid day, then its first day expired.
    assert [_same(tracker, svc, today + timedelta(days=d))["study"][0][6] for d in (10, 11)] \
        == [expired[0], expired[0] + 1]
    _same(tracker, svc, today + timedelta(days=60), site_ids={w.site_ids["201"]})
    _same(tracker, svc, today, zones={"05"}, site_ids=set())
    found = _same(tracker, svc, today)
    assert found["study"][0][1] > 6 and found["study"][0][5] > 2  # generated EDL, overdue


def test_caches_follow_new_documents_and_rebuild_when_dropped(tracker, clock, svc):
    w = _rich_study(tracker, clock)
    today = clock.now().date()
    _same(tracker, svc, today)
    assert tracker.read(summary.is_fresh, w.study_id)
    doc = tracker.file("05.02.08", site="102", document_date=today)
    assert tracker.read(summary.is_fresh, w.study_id)  # kept by the filing itself
    _same(tracker, svc, today)
    tracker.approve(doc)
    clock.advance(timedelta(days=8))
    _same(tracker, svc, clock.now().date())
    trial = tracker.file("02.01.02", document_date=today)  # a second protocol: trial level
    tracker.approve(trial)
    _same(tracker, svc, clock.now().date())
    tracker.run(tracking.set_milestone_dates, w.study_id, Scope("site", site_id=w.site_ids["102"]),
                "03", planned=today - timedelta(days=1), actual=None)
    _same(tracker, svc, clock.now().date())
    entry = tracker.read(entry_states, w.study_id, today, site_id=w.site_ids["102"])[0]
    tracker.run(tracking.change_entry, entry.entry.id, required_count=2)
    _same(tracker, svc, clock.now().date())
    bo = tracker.run(tracking.create_person, name="Dr Bo", site_id=w.site_ids["102"],
                     role="PI")
    tracker.run(tracking.link_person_to_site, bo, w.site_ids["201"], "PI")
    tracker.run(tracking.link_person_document, bo, doc)
    _same(tracker, svc, clock.now().date())
    # The QC queue: one sent to QC 9 days ago, one today.
    from etmf.documents import services as docs
    from etmf.documents.lifecycle import Action

    waiting = []
    for title in ("Waits long", "Waits a day"):
        d = tracker.file("05.02.08", site="201", title=title)
        tracker.run(docs.transition, d, Action.SUBMIT_QC, expected_version=1)
        waiting.append(d)
        clock.advance(timedelta(days=9))
    summary.refresh(svc.db.write_session, w.study_id)
    now = clock.now()
    top, ageing = tracker.read(summary.qc_queue, w.study_id, now)
    live = tracker.read(metrics.qc_queue, w.study_id, now)
    assert ageing == metrics.ageing(live)
    assert [(q.document_id, q.days) for q in top] == [(q.document_id, q.days) for q in live]
    assert [q.document_id for q in top[:2]] == waiting and top[0].days == 18
    t = tracker.read(summary.timeliness, w.study_id, 10, 2)
    assert t == tracker.read(metrics.timeliness, w.study_id, 10, 2)
    assert tracker.read(summary.approvals_by_week, w.study_id, clock.now().date()) == \
        tracker.read(metrics.approvals_by_week, w.study_id, clock.now().date())
    assert tracker.read(summary.approvals, w.study_id) == \
        tracker.read(metrics.quality, w.study_id).approvals
    with svc.db.write_session() as s:  # lost caches are rebuilt, not wrong
        s.query(DocCount).delete()
        s.query(CacheStamp).delete()
        s.commit()
    _same(tracker, svc, clock.now().date())


def test_dashboard_figures_match_the_hand_computed_study(tracker, clock):
    w = _fixture_study(tracker, clock)
    from etmf.bootstrap import services

    svc = services(w.app)
    summary.refresh(svc.db.write_session, w.study_id)
    f = tracker.read(summary.figures, w.study_id, clock.now(), LABELS, filing_target=10,
                     approval_target=2)
    total = f.groups["study"][0]
    assert (total.expected, total.approved, total.percent, total.overdue) == (6, 3, 50, 2)
    assert (f.timeliness.filed, f.timeliness.filed_on_time, f.timeliness.mean_filing_days) \
        == (5, 4, 13)
    assert (f.quality.rejections, f.quality.approvals, f.quality.open_issues) == (1, 3, 1)
    assert date(2026, 11, 23) in dict(f.trend)


@pytest.mark.req("FR-TRACK-2")
def test_every_change_shows_at_once_and_equals_a_rebuild(tracker, clock, svc):
    """Once the caches exist, each command adjusts them in its own transaction: the next
    read needs no refresh, its figures are the entry-by-entry ones, and the kept caches
    equal a rebuild from scratch (checked after every step by ``_same``)."""
    from etmf.documents import services as docs
    from etmf.documents.lifecycle import Action
    from etmf.documents.models import Document

    w = _rich_study(tracker, clock)
    today = clock.now().date()
    _same(tracker, svc, today)  # builds the caches
    stamp = tracker.read(lambda s: s.get(CacheStamp, w.study_id).seq)
    before = tracker.read(summary.summary, w.study_id, today, LABELS)["study"][0]

    def version(doc):  # type: ignore[no-untyped-def]
        return tracker.read(lambda s: s.get(Document, doc).version)

    # A document filed and approved: the total moves at once.
    doc = tracker.file("05.02.08", site="201", document_date=today - timedelta(days=3))
    _same(tracker, svc, today)
    tracker.approve(doc)
    after = _same(tracker, svc, today)["study"][0]
    assert after[2] == before.approved + 1  # approved, up to the required count
    # Its date corrected (filing lag, expiry by validity), then withdrawn.
    tracker.run(docs.change_metadata, doc, {"document_date": today - timedelta(days=40)},
                expected_version=version(doc), reason="typo")
    _same(tracker, svc, today)
    tracker.run(docs.transition, doc, Action.WITHDRAW, expected_version=version(doc),
                reason="wrong site")
    _same(tracker, svc, today)
    # Placeholders for the whole study, one then filled by a filing.
    tracker.run(tracking.create_placeholders, w.study_id, site_id=w.site_ids["102"])
    _same(tracker, svc, today)
    tracker.file("05.02.08", site="102", document_date=today)
    _same(tracker, svc, today)
    # The EDL edited: an entry added, its required count changed, then removed.
    entry = tracker.run(tracking.add_entry, w.study_id, Scope("site", site_id=w.site_ids["201"]),
                        "01.01.11", milestone="03")
    _same(tracker, svc, today)
    tracker.run(tracking.change_entry, entry, required_count=3)
    _same(tracker, svc, today)
    tracker.run(tracking.remove_entry, entry, reason="not needed")
    _same(tracker, svc, today)
    # Milestones at the site, the country and the study.
    for scope in (Scope("site", site_id=w.site_ids["201"]),
                  Scope("country", country_id=w.country_ids["DE"]), Scope("trial")):
        tracker.run(tracking.set_milestone_dates, w.study_id, scope, "03",
                    planned=today + timedelta(days=3), actual=today - timedelta(days=2))
        _same(tracker, svc, today + timedelta(days=1))
    # People: Ada leaves site 201 (her CV no longer counts there), comes back.
    ada = tracker.read(lambda s: s.scalar(select(Person.id).where(Person.name == "Dr Ada")))
    tracker.run(tracking.unlink_person_from_site, ada, w.site_ids["201"], "Sub-Investigator")
    _same(tracker, svc, today + timedelta(days=40))
    tracker.run(tracking.link_person_to_site, ada, w.site_ids["201"], "Sub-Investigator")
    _same(tracker, svc, today + timedelta(days=40))
    # An expiry rule changed by the administrator: every such document runs out sooner.
    tracker.run(tracking.set_expiry_rule, "05.02.05", 365, by=w.user("admin"))
    _same(tracker, svc, today + timedelta(days=40))
    # Nothing was rebuilt on the way: the stamp is the one of the first build.
    assert tracker.read(lambda s: s.get(CacheStamp, w.study_id).seq) == stamp
    from etmf.audit.service import replay_and_compare

    with svc.db.read_session() as session:  # the upkeep leaves the projections alone
        assert replay_and_compare(session) == []


def test_a_command_of_many_documents_settles_the_caches_once_and_exactly(
        tracker, clock, svc, monkeypatch):
    """Placeholders for a whole study in one command: the cells and places they touch are
    settled once before the commit (here, with the threshold at 0, by recounting their
    artifacts and regrouping the whole study), and the result equals a rebuild."""
    from etmf.tracking import upkeep

    w = _rich_study(tracker, clock)
    today = clock.now().date()
    _same(tracker, svc, today)
    monkeypatch.setattr(upkeep, "_MANY", 0)
    assert tracker.run(tracking.create_placeholders, w.study_id) > 10
    _same(tracker, svc, today)
    doc = tracker.file("05.02.08", site="101", document_date=today)  # fills a placeholder
    tracker.approve(doc)
    _same(tracker, svc, today)


def test_states_inside_a_command_count_its_own_unsettled_events(tracker, clock, svc):
    """A command that reads the states after its own events, before its commit settles them
    into the caches, sees its events: it is given the counts of the documents themselves."""
    from etmf.documents import services as docs
    from etmf.documents.lifecycle import Action
    from etmf.documents.models import Document

    w = _rich_study(tracker, clock)
    today = clock.now().date()
    _same(tracker, svc, today)  # builds the caches
    site = w.site_ids["201"]
    doc = tracker.file("05.02.08", site="201", document_date=today)
    tracker.run(docs.transition, doc, Action.SUBMIT_QC,
                expected_version=tracker.read(lambda s: s.get(Document, doc).version))
    version = tracker.read(lambda s: s.get(Document, doc).version)
    before = [_state(x) for x in tracker.read(entry_states, w.study_id, today, site_id=site)]

    def approve_then_read(uow, access):  # type: ignore[no-untyped-def]
        docs.transition(uow, access, doc, Action.APPROVE, expected_version=version)
        assert not counts_are_kept(uow.session, w.study_id)
        return [[_state(x) for x in entry_states(uow.session, w.study_id, today,
                                                 site_id=site, kept=kept)]
                for kept in (True, False)]

    inside, counted = tracker.run(approve_then_read, by=tracker.qc)
    assert inside == counted != before
    assert [_state(x) for x in tracker.read(entry_states, w.study_id, today, site_id=site)] \
        == counted  # and once committed, the caches hold the same


def test_a_filing_reads_its_study_cache_stamp_once(tracker, clock, svc):
    """Every event of a command asks whether its study's caches exist: the session keeps
    the answer instead of reading the stamp again for each (four times a filing)."""
    from sqlalchemy import event

    _rich_study(tracker, clock)
    _same(tracker, svc, clock.now().date())  # builds the caches
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):  # type: ignore[no-untyped-def]
        if "FROM tracking_cache_stamps" in statement:
            seen.append(statement)

    event.listen(svc.db.engine, "before_cursor_execute", count)
    try:
        doc = tracker.file("05.02.08", site="201", document_date=clock.now().date())
    finally:
        event.remove(svc.db.engine, "before_cursor_execute", count)
    assert doc and len(seen) == 1
    _same(tracker, svc, clock.now().date())  # and the filing was counted
