"""Demo: the demo inspector has asked one question, and the TMF specialist has answered."""

from __future__ import annotations

from flask import Flask

from etmf.accounts.access import Access, Grant
from etmf.audit.store import unit_of_work
from etmf.bootstrap import services
from etmf.demo import DemoContext
from etmf.inspection import services as inspection


def extend_demo(app: Flask, ctx: DemoContext) -> None:
    if "inspector" not in ctx.users or "tmf_specialist" not in ctx.users:
        return
    svc = services(app)
    iid, iname = ctx.users["inspector"]
    inspector = Access(user_id=iid, name=iname, read_only=True,
                       grants=(Grant(ctx.study_id, None, "inspector"),))
    sid, sname = ctx.users["tmf_specialist"]
    specialist = Access(user_id=sid, name=sname,
                        grants=(Grant(ctx.study_id, None, "tmf_specialist"),))
    with unit_of_work(svc.db, svc.clock, inspector.actor) as uow:
        request_id = inspection.raise_request(uow, inspector, inspection.NewRequest(
            study_id=ctx.study_id, kind="explanation", subject="Site 101 activation",
            text="Which document shows the IRB approval in force when site 101 enrolled "
                 "its first subject?"))
        uow.commit()
    with unit_of_work(svc.db, svc.clock, specialist.actor) as uow:
        inspection.answer_request(uow, specialist, request_id,
                                  "The IRB approval letter in 04.01.02, approved before the "
                                  "site activation; see its audit trail.",
                                  expected_version=1)
        uow.commit()
    ctx.progress("one inspection request raised and answered "
                 "(Inspection page of the study)")
