"""Reminders to pending signers of requests due soon or overdue: once per threshold, recorded
by an event, never twice; `etmf signatures remind [--dry-run]`."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from etmf.errors import ValidationError
from etmf.workflows.reminders import parse_thresholds, send_reminders, threshold_words
from tests.conftest import FROZEN_AT

from .conftest import events_of


def _request_due(world, svc, team, document_id: int, due: date,  # type: ignore[no-untyped-def]
                 ordering: str = "sequential") -> int:
    from etmf.workflows.services import NewSignatureRequest, SignerSpec, request_signatures

    by = team.manager
    with world.uow(by.name, by.id) as uow:
        request_id = request_signatures(
            uow, world.access(by), NewSignatureRequest(
                document_id=document_id, ordering=ordering, due_date=due,
                signers=(SignerSpec(team.investigator.id, "investigator_attestation"),
                         SignerSpec(team.manager.id, "approval"))),
            link=lambda rid: f"http://etmf.test/signatures/requests/{rid}/sign",
            notify=svc.mailer.send)
        uow.commit()
    return request_id


def _reminders(svc) -> list:  # type: ignore[no-untyped-def]
    return [m for m in svc.mailer.sent if m.subject.startswith("Reminder:")]


@pytest.mark.req("SIG-7")
def test_one_reminder_per_threshold_and_none_on_a_second_run(world, svc, clock, team,
                                                             approved_doc):
    due = FROZEN_AT.date() + timedelta(days=3)
    request_id = _request_due(world, svc, team, approved_doc, due)
    thresholds = ("2", "0", "-1", "-7")

    assert send_reminders(svc, thresholds=thresholds) == []  # 3 days left: too early
    expected = []
    for days_after, words in ((1, "due in 2 days"), (3, "due today"), (4, "1 day overdue"),
                              (14, "7 days overdue")):  # 11 days overdue: only the latest
        clock.set(FROZEN_AT + timedelta(days=days_after))
        (sent,) = send_reminders(svc, thresholds=thresholds)
        assert (sent.request_id, sent.user_id, sent.words) == (
            request_id, team.investigator.id, words)
        assert send_reminders(svc, thresholds=thresholds) == []  # idempotent
        expected.append(words)

    mails = _reminders(svc)
    assert [m.to for m in mails] == [(team.investigator.email,)] * 4  # never the 2nd signer
    assert [m.subject.split(": ")[1].removeprefix("signature ") for m in mails] == expected
    assert f"/signatures/requests/{request_id}/sign" in mails[0].body
    assert due.isoformat() in mails[0].body
    recorded = [json.loads(e.payload) for e in events_of(svc, "signature.reminder_sent")]
    assert [r["threshold_days"] for r in recorded] == [2, 0, -1, -7]
    assert {r["request_id"] for r in recorded} == {request_id}


@pytest.mark.req("SIG-7")
def test_parallel_signers_are_each_reminded_and_a_dry_run_sends_nothing(world, svc, clock,
                                                                        team, approved_doc):
    _request_due(world, svc, team, approved_doc, FROZEN_AT.date(), ordering="parallel")
    before = len(svc.mailer.sent)
    owed = send_reminders(svc, dry_run=True)  # the default thresholds: 0 is one of them
    assert sorted(r.user_id for r in owed) == sorted([team.investigator.id, team.manager.id])
    assert {r.words for r in owed} == {"due today"}
    assert len(svc.mailer.sent) == before
    assert events_of(svc, "signature.reminder_sent") == []
    assert len(send_reminders(svc)) == 2
    assert len(send_reminders(svc)) == 0
    assert len(_reminders(svc)) == 2


def test_closed_requests_and_signers_who_signed_are_not_reminded(world, svc, clock, team,
                                                                 approved_doc):
    from etmf.workflows.services import cancel

    request_id = _request_due(world, svc, team, approved_doc, FROZEN_AT.date())
    with world.uow(team.manager.name, team.manager.id) as uow:
        cancel(uow, world.access(team.manager), request_id, reason="Wrong version",
               expected_version=1)
        uow.commit()
    assert send_reminders(svc) == []


def test_thresholds_are_checked_and_described():
    assert parse_thresholds(["-1", "2", " 0 ", "2"]) == (2, 0, -1)
    with pytest.raises(ValidationError, match="not a whole number of days"):
        parse_thresholds(["soon"])
    assert [threshold_words(d) for d in (3, 1, 0, -1, -2)] == [
        "due in 3 days", "due tomorrow", "due today", "1 day overdue", "2 days overdue"]


def test_the_remind_command_has_a_dry_run(tmp_path):
    from etmf.cli import main

    runner = CliRunner()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ETMF_")}
    instance = str(tmp_path / "demo")
    demo = runner.invoke(main, ["demo", "--instance", instance, "--no-serve"], env=env)
    assert demo.exit_code == 0, demo.output
    dry = runner.invoke(main, ["signatures", "remind", "--dry-run", "--instance", instance],
                        env=env)
    assert dry.exit_code == 0, dry.output
    assert "(dry run: none sent)" in dry.output
    real = runner.invoke(main, ["signatures", "remind", "--instance", instance], env=env)
    assert real.exit_code == 0, real.output
    assert "reminder(s) sent." in real.output


def test_the_scheduler_runs_the_reminders_once_per_period(app, world, svc, clock, team,
                                                          approved_doc):
    from etmf.jobs import get_job, schedule_due, work_once

    _request_due(world, svc, team, approved_doc, FROZEN_AT.date())
    started = schedule_due(app)
    assert schedule_due(app) == []  # the period is claimed once
    work_once(app)
    (job_id,) = [j for j in started if get_job(app, j).kind == "signatures.reminders"]
    job = get_job(app, job_id)
    assert job.status == "done", job.message
    assert "2 reminder(s) sent" not in job.message  # sequential: only the first signer
    assert len(_reminders(svc)) == 1
    clock.advance(timedelta(hours=1))
    schedule_due(app)
    work_once(app)
    assert len(_reminders(svc)) == 1  # the next period sends nothing new
