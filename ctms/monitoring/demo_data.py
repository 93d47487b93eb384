"""Demo oversight records: a visit rule (every 6 weeks or after 4 new subjects, reports due
7 days after the visit), a recorded routine visit of site 101 with findings and an action
item (its report and the item overdue), two deviations, a fatal SAE on its 7-day clock, and
today's key-risk-indicator snapshot (the first point of the trend)."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask

from ctms.deviations import services as dev
from ctms.monitoring import services as mon
from ctms.safety import services as safety
from etmf.accounts.access import Access, Grant
from etmf.audit.store import unit_of_work
from etmf.bootstrap import services
from etmf.demo import DemoContext


def extend_demo(app: Flask, ctx: DemoContext) -> None:
    svc = services(app)
    today = svc.clock.now().date()

    def member(role: str) -> Access:
        uid, name = ctx.users[role]
        site = ctx.site_ids["101"] if role == "monitor" else None
        return Access(user_id=uid, name=name, grants=(Grant(ctx.study_id, site, role),))

    manager, monitor = member("study_manager"), member("monitor")

    def run(access: Access, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        with unit_of_work(svc.db, svc.clock, access.actor) as uow:
            result = fn(uow, access, *args, **kwargs)
            uow.commit()
        return result

    ctx.progress("Monitoring visits, deviations and SAEs")
    run(manager, mon.set_rule, ctx.study_id, 6, 4, 7)
    site = ctx.site_ids["101"]
    visit = run(monitor, mon.plan_visit, site_id=site, kind="routine", mode="on_site",
                planned_on=today - timedelta(days=10), cra_user_id=monitor.user_id)
    run(monitor, mon.record_visit, visit, mon.VisitRecord(
        visited_on=today - timedelta(days=10), attendees="PI, study nurse, CRA",
        subjects_reviewed="All consented subjects", documents_reviewed="Investigator site file",
        summary="Routine visit; consent process reviewed.",
        findings=(mon.NewFinding("consent", "major", "One consent form lacks the time of "
                                 "signature."),
                  mon.NewFinding("essential_documents", "minor", "Delegation log not current.")),
        action_items=(mon.NewActionItem("Update the delegation log", "Study nurse",
                                        today - timedelta(days=2)),)))
    for category, text in (("visit_window", "Week-4 visit 5 days out of window"),
                           ("consent", "ICF signed after the screening blood draw")):
        run(manager, dev.log_deviation, dev.NewDeviation(
            site_id=site, category=category, description=text,
            occurred_on=today - timedelta(days=20), identified_on=today - timedelta(days=10),
            important=category == "consent"))
    run(manager, safety.report_sae, safety.NewSae(
        site_id=ctx.site_ids["102"], term="Sudden cardiac death", seriousness="Results in death",
        awareness_on=today - timedelta(days=2), fatal=True))
    from ctms.risk.trend import take_snapshots

    take_snapshots(svc)
