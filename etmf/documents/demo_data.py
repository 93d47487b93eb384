"""Demo: a few placeholders and signposts, then every demo document made searchable."""

from __future__ import annotations

from flask import Flask

from etmf.accounts.access import Access, Grant
from etmf.audit.store import unit_of_work
from etmf.bootstrap import services
from etmf.demo import DemoContext
from etmf.documents import services as docs
from etmf.documents.indexing import reindex_all


def extend_demo(app: Flask, ctx: DemoContext) -> None:
    svc = services(app)
    uid, name = ctx.users["tmf_specialist"]
    specialist = Access(user_id=uid, name=name,
                        grants=(Grant(ctx.study_id, None, "tmf_specialist"),))
    with unit_of_work(svc.db, svc.clock, specialist.actor) as uow:
        docs.create_placeholder(uow, specialist, docs.NewRecord(
            study_id=ctx.study_id, artifact="05.04.03", title="Monitoring Visit Report – "
            "site 101, visit 3", level="site", site_id=ctx.site_ids["101"]))
        docs.create_signpost(uow, specialist, docs.NewRecord(
            study_id=ctx.study_id, artifact="02.01.02", title="Protocol signature pages "
            "(wet ink)", system="Sponsor paper archive", location="Box ONC-301/07, shelf B3"))
        uow.commit()
    indexed, failures = reindex_all(svc)
    ctx.progress(f"placeholder and signpost recorded; {indexed} documents searchable"
                 + (f" ({failures} without text)" if failures else ""))
