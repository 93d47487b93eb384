"""Demo: ONC-301's plan, protocol and ICF in force per site, a visit schedule, a concealed
randomization list, and subjects enrolled over the last months (one visit out of window)."""

from __future__ import annotations

import random
from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from ctms.randomization import concealment
from ctms.randomization import services as rnd
from ctms.sites import services as sites
from ctms.studyplan import services as plan
from ctms.subjects import services as subj
from ctms.subjects.models import Visit
from etmf.accounts.access import Access, Grant
from etmf.audit.store import Actor, unit_of_work
from etmf.bootstrap import services
from etmf.demo import DemoContext
from etmf.documents.models import Document
from etmf.studies.models import Site


def extend_demo(app: Flask, ctx: DemoContext) -> None:
    svc = services(app)
    concealment.remember(svc.settings)
    today = svc.clock.now().date()
    uid, name = ctx.users["study_manager"]
    manager = Access(user_id=uid, name=name, grants=(Grant(ctx.study_id, None, "study_manager"),))
    randomizer = Access(user_id=None, name="etmf demo (randomization manager)",
                        grants=(Grant(ctx.study_id, None, "randomizer"),))

    def run(access: Access, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        with unit_of_work(svc.db, svc.clock, Actor(access.user_id, access.name)) as uow:
            result = fn(uow, access, *args, **kwargs)
            uow.commit()
        return result

    def doc(title: str) -> int:
        with svc.db.read_session() as s:
            found = s.scalar(select(Document.id).where(Document.study_id == ctx.study_id,
                                                       Document.title == title))
        assert found is not None, title
        return found

    run(manager, plan.set_study_plan, ctx.study_id, plan.PlanChange(
        indication="Advanced non-small-cell lung cancer", planned_enrollment=90,
        planned_start=today - timedelta(days=150), planned_end=today + timedelta(days=400)))
    protocol = run(manager, plan.register_version, ctx.study_id, kind="protocol", label="v3.0",
                   document_id=doc("Protocol ONC-301 v3.0"))
    icf = run(manager, plan.register_version, ctx.study_id, kind="icf", label="v4.0",
              document_id=doc("Informed Consent Form master v4.0"))
    for number, site_id in ctx.site_ids.items():
        approval = doc(f"IRB/IEC Decision – site {number}")
        for version in (protocol, icf):
            run(manager, plan.approve_version_at_site, site_id=site_id, version_id=version,
                approval_document_id=approval, approved_on=today - timedelta(days=140),
                activated_on=today - timedelta(days=130))
        run(manager, sites.set_enrollment_target, site_id, 15)
    for spec in (subj.VisitSpec("V1", "Baseline", 0), subj.VisitSpec("V2", "Week 2", 14, 3, 3),
                 subj.VisitSpec("V3", "Week 4", 28, 3, 3),
                 subj.VisitSpec("V4", "Week 8", 56, 7, 7)):
        run(manager, subj.define_visit, ctx.study_id, spec)
    run(randomizer, rnd.generate_list, ctx.study_id, arms=["Tumorolimab", "Placebo"],
        strata=["PD-L1 high", "PD-L1 low"], block_size=4, blocks_per_stratum=20,
        seed="ONC-301-demo")

    rng = random.Random(301)
    enrolled = 0
    for n, (number, site_id) in enumerate(sorted(ctx.site_ids.items())):
        with svc.db.read_session() as s:
            version = s.get(Site, site_id).version  # type: ignore[union-attr]
        if n % 2 == 0:
            run(manager, sites.change_site_status, site_id, "enrolling",
                expected_version=version)
        for i in range(rng.randint(2, 7)):
            on = today - timedelta(days=rng.randint(5, 120))
            sid = run(manager, subj.screen_subject, site_id=site_id, number=f"{number}-{i + 1:03}",
                      screened_on=on)
            run(manager, subj.record_consent, sid, icf_version_id=icf, consented_on=on)
            if i == 0 and n % 3 == 0:
                run(manager, subj.change_status, sid, "screen_failed", effective_on=on,
                    reason="Inclusion criterion 3 not met")
                continue
            run(manager, subj.change_status, sid, "enrolled", effective_on=on)
            run(manager, rnd.randomize_subject, sid, on=on,
                stratum=rng.choice(["PD-L1 high", "PD-L1 low"]))
            enrolled += 1
            with svc.db.read_session() as s:
                visits = s.scalars(select(Visit).where(Visit.subject_id == sid)
                                   .order_by(Visit.due_on)).all()
            for v in visits:
                done = v.due_on + timedelta(days=rng.choice([0, 1, -1, 2, 9]))
                if done < today:
                    run(manager, subj.complete_visit, v.id, completed_on=max(done, on))
    ctx.progress(f"CTMS: plan, protocol v3.0 and ICF v4.0 in force at {len(ctx.site_ids)} "
                 f"sites, randomization list, {enrolled} subjects enrolled")
    from ctms.payments.demo_data import pay_first_batch

    pay_first_batch(app, ctx)  # the payments demo set the contracts; now there are accruals


