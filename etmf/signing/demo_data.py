"""Demo signing records: every demo user who signs is enrolled (identity verified by the demo
administrator, statement accepted, certificate issued); the investigator has one pending
signature request, and one document is fully signed."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import select

from etmf.accounts.access import Access, Grant
from etmf.audit.store import Actor, Context, unit_of_work
from etmf.bootstrap import services
from etmf.demo import DEMO_PASSWORD, DemoContext
from etmf.documents.models import Document
from etmf.signing import service as signing
from etmf.workflows import services as workflow

SIGNING_ROLES = ("study_manager", "investigator")


def extend_demo(app: Flask, ctx: DemoContext) -> None:
    svc = services(app)
    admin_id, admin_name = ctx.users["admin"]
    admin = Access(user_id=admin_id, name=admin_name, is_admin=True)

    def member(role: str) -> Access:
        uid, name = ctx.users[role]
        site = ctx.site_ids["101"] if role == "investigator" else None
        return Access(user_id=uid, name=name, grants=(Grant(ctx.study_id, site, role),))

    for role in SIGNING_ROLES:
        uid, name = ctx.users[role]
        with unit_of_work(svc.db, svc.clock, admin.actor) as uow:
            signing.record_identity_check(uow, svc, admin, uid, method="in_person",
                                          document_seen="Passport (demo)",
                                          notes="Demo enrolment")
            uow.commit()
        with unit_of_work(svc.db, svc.clock, Actor(uid, name)) as uow:
            signing.accept_statement(uow, svc, member(role), accepted=True)
            uow.commit()

    def doc_titled(title: str) -> int:
        with svc.db.read_session() as s:
            found = s.scalar(select(Document.id).where(Document.study_id == ctx.study_id,
                                                       Document.title == title))
        assert found is not None, title
        return found

    manager = member("study_manager")
    link = lambda rid: workflow.request_link(svc.settings.server_name_for_mail, rid)  # noqa: E731

    def request(document_id: int, signer: str, meaning: str, message: str) -> int:
        with unit_of_work(svc.db, svc.clock, manager.actor) as uow:
            rid = workflow.request_signatures(uow, manager, workflow.NewSignatureRequest(
                document_id=document_id, signers=(workflow.SignerSpec(
                    ctx.users[signer][0], meaning),), message=message), link,
                svc.mailer.send)
            uow.commit()
        return rid

    request(doc_titled("Protocol ONC-301 v3.0"), "investigator", "investigator_attestation",
            "Please sign the protocol signature page for site 101.")
    done = request(doc_titled("Investigator's Brochure, edition 7"), "study_manager",
                   "approval", "Sponsor approval of IB edition 7.")
    with app.test_request_context():
        workflow.sign(svc, manager, Context(), done, password=DEMO_PASSWORD, totp=None,
                      link=link)
    ctx.progress("signing: 2 signers enrolled with certificates, 1 request waiting for the "
                 "investigator, 1 document signed")
