"""Reminders before expiry and milestone dates: once per threshold, audited, over SMTP."""

from __future__ import annotations

from datetime import timedelta

import pytest

from etmf.tracking import services as tracking
from etmf.tracking.reminders import send_reminders
from etmf.tracking.services import Scope


@pytest.mark.req("FR-TRACK-5")
def test_expiry_reminder_is_sent_once_per_threshold(tracker, svc, clock):
    w = tracker.w
    specialist = w.user("tmf_specialist", email="tmf@example.org")
    other_site = w.user("site_staff", site="201", email="fr@example.org")
    today = clock.now().date()
    cv = tracker.file("05.02.04", site="101", document_date=today - timedelta(days=10),
                      expiry_date=today + timedelta(days=29), title="CV Dr Bo")
    tracker.approve(cv)
    preview = send_reminders(svc, dry_run=True)
    assert [(r.subject_id, r.threshold) for r in preview] == [(cv, 30)]
    assert svc.mailer.sent == []
    sent = send_reminders(svc)
    assert [(r.subject_id, r.threshold, r.days_left) for r in sent] == [(cv, 30, 29)]
    mail = svc.mailer.sent[-1]
    assert specialist.email in mail.to and other_site.email not in mail.to
    assert "CV Dr Bo expires in 29 days" in mail.subject
    assert send_reminders(svc) == []  # not again on the next run
    assert len(svc.mailer.sent) == 1
    clock.advance(timedelta(days=29))  # the expiry date: the 0-day threshold
    assert [r.threshold for r in send_reminders(svc)] == [0]
    clock.advance(timedelta(days=1))
    assert send_reminders(svc) == []


@pytest.mark.req("FR-TRACK-5")
def test_milestone_reminder_before_the_planned_date(tracker, svc, clock):
    w = tracker.w
    today = clock.now().date()
    tracker.run(tracking.set_milestone_dates, w.study_id, Scope("site", site_id=w.site_ids["102"]),
                "03", planned=today + timedelta(days=6), actual=None)
    sent = send_reminders(svc)
    assert [(r.kind, r.threshold) for r in sent] == [("milestone", 7)]
    assert "Site Live" in svc.mailer.sent[-1].subject
    assert send_reminders(svc) == []


@pytest.mark.req("FR-TRACK-5")
def test_the_daily_scheduled_job_sends_the_reminders(app, tracker, svc, clock):
    from etmf.jobs import get_job, schedule_due, work_once

    today = clock.now().date()
    cv = tracker.file("05.02.04", site="101", document_date=today,
                      expiry_date=today + timedelta(days=5))
    tracker.approve(cv)
    started = schedule_due(app)
    work_once(app)
    (job_id,) = [j for j in started if get_job(app, j).kind == "tracking.reminders"]
    assert get_job(app, job_id).status == "done"
    assert [m.subject for m in svc.mailer.sent if "expires in 5 days" in m.subject]


def test_the_reminders_command_has_a_dry_run(tmp_path):
    import os

    from click.testing import CliRunner

    from etmf.cli import main

    runner = CliRunner()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETMF_")}
    instance = str(tmp_path / "demo")
    demo = runner.invoke(main, ["demo", "--instance", instance, "--no-serve"], env=env)
    assert demo.exit_code == 0, demo.output
    dry = runner.invoke(main, ["reminders", "run", "--dry-run", "--instance", instance], env=env)
    assert dry.exit_code == 0, dry.output
    assert "would remind" in dry.output and "(dry run: none sent)" in dry.output
    real = runner.invoke(main, ["reminders", "run", "--instance", instance], env=env)
    assert real.exit_code == 0 and "reminder(s) sent." in real.output
    again = runner.invoke(main, ["reminders", "run", "--instance", instance], env=env)
    assert again.output.strip().endswith("0 reminder(s) sent.")


@pytest.mark.req("FR-TRACK-5")
def test_the_study_chooses_who_gets_each_kind_of_reminder(tracker, svc, clock, login):
    from tests.conftest import csrf_from

    w = tracker.w
    specialist = w.user("tmf_specialist", email="tmf@example.org")
    site_101 = w.user("site_staff", site="101", email="de101@example.org")
    tracker.run(tracking.set_targets, w.study_id, filing_days=30, approval_days=14,
                expiry_roles=["site_staff"], milestone_roles="study_manager")
    today = clock.now().date()
    cv = tracker.file("05.02.04", site="101", expiry_date=today + timedelta(days=5))
    tracker.approve(cv)
    tracker.run(tracking.set_milestone_dates, w.study_id, Scope("trial"), "01",
                planned=today + timedelta(days=6), actual=None)
    sent = {r.kind: r.recipients for r in send_reminders(svc)}
    assert sent["expiry"] == (site_101.email,)
    assert sent["milestone"] == (tracker.manager.email,)
    assert specialist.email not in {a for m in svc.mailer.sent for a in m.to}
    assert send_reminders(svc) == []  # still once per threshold
    with pytest.raises(Exception, match="not a role"):
        tracker.run(tracking.set_targets, w.study_id, filing_days=30, approval_days=14,
                    expiry_roles="admin")
    # The EDL page shows the rule and saves the boxes ticked.
    client = login(tracker.manager)
    page = client.get(f"/tracking/studies/{w.study_id}/edl").get_data(as_text=True)
    assert 'name="expiry_roles" value="site_staff" checked' in page
    assert "mailed once per threshold" in page
    client.post(f"/tracking/studies/{w.study_id}/targets", data={
        "csrf_token": csrf_from(page), "filing_days": "30", "approval_days": "14",
        "expiry_reminders": "30", "milestone_reminders": "7", "roles_shown": "1",
        "expiry_roles": ["tmf_specialist", "study_manager"]})
    t = tracker.read(tracking.targets_of, w.study_id)
    assert (t.expiry_roles, t.milestone_roles) == ("study_manager,tmf_specialist", "")
