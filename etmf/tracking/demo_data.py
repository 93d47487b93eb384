"""Demo: the expected document list from the Reference Model, start-up milestone dates per
site, and the principal investigator of site 101 as a person owning their CV."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from etmf.accounts.access import Access, Grant
from etmf.audit.store import unit_of_work
from etmf.bootstrap import services
from etmf.demo import DemoContext
from etmf.documents.models import Document
from etmf.tracking import services as tracking


def extend_demo(app: Flask, ctx: DemoContext) -> None:
    svc = services(app)
    uid, name = ctx.users["study_manager"]
    manager = Access(user_id=uid, name=name, grants=(Grant(ctx.study_id, None, "study_manager"),))
    today = svc.clock.now().date()
    with unit_of_work(svc.db, svc.clock, manager.actor) as uow:
        added = tracking.generate_edl(uow, manager, ctx.study_id)
        for i, (_number, site_id) in enumerate(sorted(ctx.site_ids.items())):
            # The first sites opened weeks ago (their start-up documents are overdue when
            # missing); the others open in the coming weeks.
            planned = today + timedelta(days=-45 + 20 * i)
            tracking.set_milestone_dates(
                uow, manager, ctx.study_id, tracking.Scope("site", site_id=site_id), "03",
                planned=planned, actual=planned if planned <= today else None)
        first = sorted(ctx.site_ids)[0]
        person = tracking.create_person(uow, manager, name="Dr. Elena Marsh",
                                        email="e.marsh@example.org",
                                        site_id=ctx.site_ids[first], role="Principal Investigator")
        if len(ctx.site_ids) > 1:
            tracking.link_person_to_site(uow, manager, person, ctx.site_ids[sorted(ctx.site_ids)[1]],
                                         "Sub-Investigator")
        cv = uow.session.scalar(select(Document.id).where(
            Document.study_id == ctx.study_id, Document.artifact_id.in_(("087", "088")))
            .order_by(Document.id).limit(1))
        if cv is not None:
            tracking.link_person_document(uow, manager, person, cv)
        uow.commit()
    ctx.progress(f"expected document list: {added} entries; milestones and a person recorded")
