"""The demo instance: one study, 3 countries, 6 sites, one account per role, ~50 documents.

Built through the same services as the web pages (so every demo record has its audit
events), with documents generated as real PDF and DOCX files.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from flask import Flask

from etmf.accounts.access import Access, Grant
from etmf.accounts.services import NewUser, create_user, grant_membership
from etmf.audit.store import Actor, unit_of_work
from etmf.bootstrap import services
from etmf.documents import services as docs
from etmf.documents.lifecycle import Action
from etmf.keys import ensure_system_keys
from etmf.migrate import upgrade
from etmf.reference_model.model import load_reference_model
from etmf.studies.services import NewStudy, add_country, add_site, create_study

DEMO_PASSWORD = "Demo-Trial-Master-2026"
DEMO_DOMAIN = "etmf-demo.org"

#: (e-mail local part, full name, role code, role label, site number or None)
DEMO_USERS = [
    ("admin", "Alex Admin", "admin", "Administrator", None),
    ("manager", "Morgan Manager", "study_manager", "Study manager", None),
    ("specialist", "Sam Specialist", "tmf_specialist", "TMF specialist", None),
    ("qc", "Quinn Reviewer", "qc_reviewer", "QC reviewer", None),
    ("investigator", "Dr Irene Investigator", "investigator", "Investigator", "101"),
    ("sitestaff", "Sid Coordinator", "site_staff", "Site staff", "101"),
    ("monitor", "Mona Monitor", "monitor", "Monitor / CRA", "101"),
    ("auditor", "Audrey Auditor", "auditor", "Auditor", None),
    ("inspector", "Ian Inspector", "inspector", "Inspector", None),
]

COUNTRIES = [("DE", "Germany"), ("FR", "France"), ("US", "United States")]
SITES = [
    ("101", "DE", "Charité – Universitätsmedizin Berlin", "Dr Irene Investigator"),
    ("102", "DE", "Universitätsklinikum Heidelberg", "Prof. Karl Weber"),
    ("201", "FR", "Hôpital Européen Georges-Pompidou", "Dr Claire Martin"),
    ("202", "FR", "CHU de Lyon", "Dr Louis Bernard"),
    ("301", "US", "Massachusetts General Hospital", "Dr Emily Carter"),
    ("302", "US", "Mayo Clinic Rochester", "Dr James Miller"),
]

# (artifact number, title, level, format, final state, expiry in days or None)
TRIAL_DOCUMENTS = [
    ("01.01.01", "Trial Master File Plan", "trial", "docx", "approved", None),
    ("01.01.02", "Trial Management Plan", "trial", "docx", "approved", None),
    ("02.01.01", "Investigator's Brochure, edition 7", "trial", "pdf", "approved", None),
    ("02.01.02", "Protocol ONC-301 v3.0", "trial", "pdf", "approved", None),
    ("02.01.04", "Protocol Amendment 2", "trial", "pdf", "in_qc", None),
    ("02.01.06", "Insurance Certificate 2026", "trial", "pdf", "approved", 25),
    ("02.02.03", "Informed Consent Form master v4.0", "trial", "docx", "in_qc", None),
    ("01.02.02", "Trial Team CV – Morgan Manager", "trial", "pdf", "approved", 40),
    ("01.04.02", "Trial Team Training Material", "trial", "docx", "draft", None),
]
COUNTRY_DOCUMENTS = [
    ("03.01.01", "Regulatory Submission", "pdf", "approved"),
    ("03.01.02", "Regulatory Authority Decision", "pdf", "approved"),
]
SITE_DOCUMENTS = [
    ("04.01.02", "IRB/IEC Decision", "pdf", "approved", 330),
    ("05.02.04", "Principal Investigator CV", "pdf", "approved", 20),
    ("05.02.08", "Form FDA 1572", "pdf", "in_qc", None),
    ("05.02.18", "Site Signature Sheet", "docx", "draft", None),
    ("05.03.03", "Site Evidence of Training (GCP)", "pdf", "approved", 75),
    ("05.02.10", "Financial Disclosure Form", "pdf", "approved", None),
]

LOREM = (
    "This document forms part of the Trial Master File of study ONC-301, a randomised, "
    "double-blind, placebo-controlled phase III trial of tumorolimab in adults with "
    "advanced non-small-cell lung cancer. It is filed in accordance with the TMF "
    "Reference Model and the sponsor's TMF plan."
)


@dataclass(frozen=True)
class DemoContext:
    """What an area's ``demo_data.extend_demo(app, ctx)`` gets to add its own demo records."""

    study_id: int
    country_ids: dict[str, int]
    site_ids: dict[str, int]
    #: role code → (user id, full name) of the demo account with that role
    users: dict[str, tuple[int, str]]
    progress: Callable[[str], None]


def _extensions() -> list[Callable[[Flask, DemoContext], None]]:
    """Every ``<area>/demo_data.py`` with an ``extend_demo`` function, in area order."""
    from etmf.areas import area_modules

    return [module.extend_demo for module in area_modules("demo_data")]


@dataclass(frozen=True)
class _Ctx:
    app: Flask
    study_id: int
    specialist: Access
    qc: Access
    manager: Access


def demo_accounts() -> list[tuple[str, str]]:
    return [(f"{local}@{DEMO_DOMAIN}", label) for local, _n, _r, label, _s in DEMO_USERS]


def make_pdf(title: str, body: str, pages: int = 1) -> bytes:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=A4, invariant=1)
    c.setTitle(title)
    for page in range(1, pages + 1):
        c.setFont("Helvetica-Bold", 16)
        c.drawString(60, 780, title)
        c.setFont("Helvetica", 10)
        text = c.beginText(60, 750)
        words, line = body.split(), ""
        for word in words:
            if len(line) + len(word) > 95:
                text.textLine(line)
                line = ""
            line += word + " "
        text.textLine(line)
        c.drawText(text)
        c.drawString(60, 40, f"ONC-301 · page {page} of {pages}")
        c.showPage()
    c.save()
    return buf.getvalue()


def make_docx(title: str, body: str) -> bytes:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    document.add_paragraph(body)
    document.add_paragraph("Version history: see the eTMF version list for this document.")
    buf = io.BytesIO()
    document.save(buf)
    return buf.getvalue()


def build_demo(app: Flask, progress: Callable[[str], None] = lambda _m: None) -> list[tuple[str, str]]:
    """Create the demo data in the app's (fresh) instance; returns (e-mail, role) pairs."""
    svc = services(app)
    (svc.settings.instance_path / ".etmf-demo").write_text("demo instance\n")
    upgrade(svc.db.engine)
    ensure_system_keys(svc.settings)
    progress("schema and keys ready")

    system = Actor.system("etmf demo")
    with unit_of_work(svc.db, svc.clock, system) as uow:
        study_id = create_study(uow, NewStudy(
            protocol_number="ONC-301",
            title="A Phase III Study of Tumorolimab versus Placebo in Advanced NSCLC",
            phase="III", sponsor="Northwind Oncology Ltd", therapeutic_area="Oncology"))
        country_ids = {code: add_country(uow, study_id=study_id, code=code, name=name)
                       for code, name in COUNTRIES}
        site_ids = {number: add_site(uow, study_id=study_id, country_id=country_ids[cc],
                                     number=number, institution=inst,
                                     principal_investigator=pi, status="active")
                    for number, cc, inst, pi in SITES}
        users: dict[str, tuple[int, str]] = {}
        for local, name, role_code, _label, site in DEMO_USERS:
            user = create_user(uow, NewUser(
                email=f"{local}@{DEMO_DOMAIN}", full_name=name, password=DEMO_PASSWORD,
                global_roles=("admin",) if role_code == "admin" else ()))
            users[role_code] = (user.id, name)
            if role_code != "admin":
                grant_membership(uow, user_id=user.id, study_id=study_id, role=role_code,
                                 site_id=site_ids[site] if site else None)
        uow.commit()
    progress(f"study ONC-301 with {len(COUNTRIES)} countries, {len(SITES)} sites, "
             f"{len(DEMO_USERS)} accounts")

    def access(role_code: str) -> Access:
        uid, name = users[role_code]
        return Access(user_id=uid, name=name, grants=(Grant(study_id, None, role_code),))

    ctx = _Ctx(app, study_id, access("tmf_specialist"), access("qc_reviewer"),
               access("study_manager"))
    rng = random.Random(301)
    today = svc.clock.now().date()
    count = 0
    for number, title, level, fmt, state, expiry in TRIAL_DOCUMENTS:
        _file(ctx, rng, today, number, title, level, None, None, fmt, state, expiry)
        count += 1
    for code, cid in country_ids.items():
        for number, title, fmt, state in COUNTRY_DOCUMENTS:
            _file(ctx, rng, today, number, f"{title} – {code}", "country", cid, None, fmt,
                  state, None)
            count += 1
    for site_number, sid in site_ids.items():
        for number, title, fmt, state, expiry in SITE_DOCUMENTS:
            _file(ctx, rng, today, number, f"{title} – site {site_number}", "site", None, sid,
                  fmt, state, expiry)
            count += 1
    progress(f"{count} documents filed (PDF and DOCX), some in QC, some expiring soon")
    demo_ctx = DemoContext(study_id=study_id, country_ids=country_ids, site_ids=site_ids,
                           users=users, progress=progress)
    for extend in _extensions():
        extend(app, demo_ctx)
    return demo_accounts()


def _file(ctx: _Ctx, rng: random.Random, today: date, number: str, title: str, level: str,
          country_id: int | None, site_id: int | None, fmt: str, state: str,
          expiry_days: int | None) -> None:
    svc = services(ctx.app)
    model = load_reference_model()
    artifact = model.artifact_by_number(number)
    body = f"{artifact.name}. {artifact.definition} {LOREM}"
    if fmt == "pdf":
        content, mime, ext = make_pdf(title, body, pages=rng.randint(1, 3)), "application/pdf", "pdf"
    else:
        content = make_docx(title, body)
        mime = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        ext = "docx"
    ref = svc.blobs.put(io.BytesIO(content))
    stored = docs.StoredFile(sha256=ref.sha256, size=ref.size, mime=mime,
                             filename=f"{title.replace(' ', '_').replace('/', '-')}.{ext}",
                             page_count=None)
    document_date = today - timedelta(days=rng.randint(20, 400))
    expiry = today + timedelta(days=expiry_days) if expiry_days is not None else None
    with unit_of_work(svc.db, svc.clock, ctx.specialist.actor) as uow:
        doc_id = docs.file_document(uow, ctx.specialist, docs.FileDocument(
            study_id=ctx.study_id, artifact=artifact.unique_id, title=title, file=stored,
            level=level, country_id=country_id, site_id=site_id,
            person=title.split("–")[-1].strip() if "CV" in title else None,
            language="en", document_date=document_date, expiry_date=expiry))
        if state in ("in_qc", "approved"):
            docs.transition(uow, ctx.specialist, doc_id, Action.SUBMIT_QC, expected_version=1)
        if state == "approved":
            docs.transition(uow, ctx.qc, doc_id, Action.APPROVE, expected_version=2)
        uow.commit()
