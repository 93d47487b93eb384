"""CTMS pages: study plan and versions, sites, subjects, randomization, enrollment.

Every form posts to one command; a refusal the user can act on (invalid input, a step not
possible now, consent on the wrong ICF) comes back on the page as a message, permission
refusals stay 403/404 as everywhere else.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_security import auth_required
from sqlalchemy import select

from ctms.enrollment.chart import enrollment_svg
from ctms.enrollment.services import study_enrollment
from ctms.randomization import services as rnd
from ctms.sites import personnel
from ctms.sites import services as sites_svc
from ctms.sites.models import SitePlan
from ctms.studyplan import services as plan_svc
from ctms.studyplan.models import StudyPlan
from ctms.subjects import services as subj
from ctms.subjects.models import Consent, Subject, Visit
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.documents.models import Document
from etmf.errors import Conflict, InvalidTransition, NotFound, ValidationError
from etmf.studies.models import Site, Study
from etmf.web import command, db_session
from etmf.web.documents import parse_date
from etmf.web.studies import load_study

bp = Blueprint("ctms", __name__, url_prefix="/ctms")

NAV = [("Trial management", "ctms.index", 30)]

#: Refusals shown on the page the form came from (permission refusals are not caught).
_SHOWN = (ValidationError, InvalidTransition, Conflict, NotFound)

#: Sites a page of the CTMS study page shows, with their forms, people and charts (the
#: study's own figures count every site).
SITE_ROWS = 50


def _int(name: str, label: str, *, required: bool = True) -> int | None:
    value = request.form.get(name, "").strip()
    if not value and not required:
        return None
    if not value.isdigit() or len(value) > 9:
        raise ValidationError(f"{label} must be a whole number.")
    return int(value)


def _today():  # type: ignore[no-untyped-def]
    return services().clock.now().date()


def _visible_sites(study_id: int) -> list[Site]:
    scope = current_access().site_scope(study_id)
    rows = db_session().scalars(select(Site).where(Site.study_id == study_id)
                                .order_by(Site.number)).all()
    return [s for s in rows if scope is None or s.id in scope]


def _form(permission: Permission, back: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A POST handler: permission on the study first, then the command; refusals flash."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def view(study_id: int):  # type: ignore[no-untyped-def]
            current_access().require(permission, study_id)
            page = request.form.get("page", "")  # back to the page of sites the form was on
            kept = {"page": int(page)} if page.isdigit() and len(page) < 6 else {}
            target = url_for(back, study_id=study_id, **kept)
            try:
                with command() as uow:
                    message = fn(uow, study_id)
                    uow.commit()
            except sites_svc.SiteNotReady as refused:
                flash(refused.message, "error")
                return redirect(url_for(back, study_id=study_id, **kept,
                                        gaps=json.dumps(refused.detail["gaps"])))
            except _SHOWN as refused:
                flash(refused.message, "error")
                return redirect(target)
            flash(message, "success")
            return redirect(target)

        return view

    return wrap


# --- pages ------------------------------------------------------------------------------------


@bp.get("/")
@auth_required("session")
def index():  # type: ignore[no-untyped-def]
    ids = current_access().study_ids()
    studies = db_session().scalars(select(Study).where(Study.id.in_(ids))
                                   .order_by(Study.protocol_number)).all() if ids else []
    return render_template("ctms/index.html", studies=studies)


@bp.get("/studies/<int:study_id>")
@auth_required("session")
def study(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    access = current_access()
    today = _today()
    sites = _visible_sites(study_id)
    site_ids = frozenset(s.id for s in sites)
    in_force = plan_svc.versions_in_force(session, study_id, site_ids, today)
    enrollment = study_enrollment(session, study_id, today,
                                  access.site_scope(study_id))
    charts = {"study": enrollment_svg(
        title=f"Enrollment of {study.protocol_number}: actual vs target",
        enrolled_dates=enrollment.enrolled_dates, target=enrollment.target,
        start=enrollment.start, end=enrollment.end, today=today, fc=enrollment.forecast)}
    pages = max(1, -(-len(enrollment.sites) // SITE_ROWS))
    asked = request.args.get("page", "")
    page = min(max(int(asked), 1), pages) if asked.isdigit() and len(asked) < 6 else 1
    shown = enrollment.sites[(page - 1) * SITE_ROWS:page * SITE_ROWS]
    shown_ids = {row.site.id for row in shown}
    for row in shown:
        charts[row.site.id] = enrollment_svg(
            title=f"Enrollment at site {row.site.number}", enrolled_dates=row.enrolled_dates,
            target=row.target, start=row.site.activated_on or enrollment.start,
            end=enrollment.end, today=today)
    gaps: list[dict[str, Any]] = []
    try:
        gaps = json.loads(request.args.get("gaps", "[]"))
        assert isinstance(gaps, list) and all(isinstance(g, dict) for g in gaps)
    except (ValueError, AssertionError):
        gaps = []
    def approved(numbers: tuple[str, ...]) -> list[Any]:
        if not access.can(Permission.MANAGE_STUDY, study_id):
            return []
        return list(session.execute(
            select(Document.id, Document.artifact_number, Document.title, Document.site_id)
            .where(Document.study_id == study_id, Document.status == "approved",
                   Document.artifact_number.in_(numbers)).order_by(Document.title)))

    version_documents = approved(plan_svc.VERSION_ARTIFACTS)
    approval_documents = [d for d in approved(plan_svc.APPROVAL_ARTIFACTS)
                          if d.site_id is None or d.site_id in site_ids]
    people = personnel.key_personnel(session, site_ids, today)
    person_numbers = [n for numbers in personnel.KINDS.values() for n in numbers]
    person_documents = session.execute(
        select(Document.id, Document.artifact_number, Document.title, Document.site_id)
        .where(Document.study_id == study_id, Document.artifact_number.in_(person_numbers),
               Document.status.in_(("draft", "in_qc", "approved")))
        .order_by(Document.artifact_number, Document.title)).all() \
        if access.can(Permission.MANAGE_STUDY, study_id) else []
    return render_template(
        "ctms/study.html", study=study, plan=session.get(StudyPlan, study_id), sites=sites,
        shown=shown, page=page, pages=pages,
        versions=plan_svc.versions(session, study_id),
        approvals=[a for a in plan_svc.approvals(session, study_id) if a.site_id in site_ids],
        in_force=in_force, enrollment=enrollment, charts=charts, today=today,
        statuses=sites_svc.STATUS_LABELS, transitions=sites_svc.TRANSITIONS, gaps=gaps,
        schedule=subj.schedule(session, study_id), version_documents=version_documents,
        approval_documents=approval_documents,
        personnel=[p for p in people if p.site_id in shown_ids], people=people,
        person_kinds=list(personnel.KINDS), person_roles=personnel.ROLES,
        person_documents=[d for d in person_documents if d.site_id is None
                          or d.site_id in site_ids],
        targets={p.site_id: p.enrollment_target for p in session.scalars(
            select(SitePlan).where(SitePlan.study_id == study_id))},
        can_manage=access.can(Permission.MANAGE_STUDY, study_id))


@bp.get("/studies/<int:study_id>/subjects")
@auth_required("session")
def subjects(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    access = current_access()
    today = _today()
    sites = _visible_sites(study_id)
    by_id = {s.id: s for s in sites}
    rows = session.scalars(select(Subject).where(Subject.study_id == study_id,
                                                 Subject.site_id.in_(list(by_id)))
                           .order_by(Subject.number)).all() if by_id else []
    ids = [s.id for s in rows]
    visits: dict[int, list[Visit]] = {}
    consents: dict[int, list[Consent]] = {}
    if ids:
        for v in session.scalars(select(Visit).where(Visit.subject_id.in_(ids))
                                 .order_by(Visit.due_on)):
            visits.setdefault(v.subject_id, []).append(v)
        for c in session.scalars(select(Consent).where(Consent.subject_id.in_(ids))
                                 .order_by(Consent.consented_on)):
            consents.setdefault(c.subject_id, []).append(c)
    reconsent = {s.id: subj.needs_reconsent(session, s, today) for s in rows}
    icfs = [v for v in plan_svc.versions(session, study_id) if v.kind == "icf"]
    rl = rnd.active_list(session, study_id)
    return render_template(
        "ctms/subjects.html", study=study, sites=sites, sites_by_id=by_id, subjects=rows,
        visits=visits, consents=consents, reconsent=reconsent, icfs=icfs,
        icf_labels={v.id: v.label for v in icfs}, today=today,
        strata=json.loads(rl.strata) if rl else [], labels=subj.STATUS_LABELS_SUBJECT,
        transitions=subj.TRANSITIONS,
        can_manage=access.can(Permission.MANAGE_SUBJECTS, study_id))


@bp.get("/studies/<int:study_id>/randomization")
@auth_required("session")
def randomization(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    current_access().require(Permission.VIEW_RANDOMIZATION_LIST, study_id)
    session = db_session()
    rl = rnd.active_list(session, study_id)
    numbers = dict(session.execute(select(Subject.id, Subject.number)
                                   .where(Subject.study_id == study_id)).all())
    return render_template("ctms/randomization.html", study=study, rl=rl,
                           arms=json.loads(rl.arms) if rl else [],
                           strata=json.loads(rl.strata) if rl else [],
                           slots=rnd.slots(session, current_access(), study_id),
                           seed=rnd.seed_of(session, current_access(), study_id),
                           numbers=numbers)


# --- study plan, versions, sites --------------------------------------------------------------


@bp.post("/studies/<int:study_id>/plan")
@auth_required("session")
@_form(Permission.MANAGE_STUDY, "ctms.study")
def save_plan(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    f = request.form
    plan_svc.set_study_plan(uow, current_access(), study_id, plan_svc.PlanChange(
        indication=f.get("indication"),
        planned_enrollment=_int("planned_enrollment", "Planned enrollment", required=False),
        planned_start=parse_date(f.get("planned_start"), "Planned start"),
        planned_end=parse_date(f.get("planned_end"), "Planned end")))
    return "The study plan is saved."


@bp.post("/studies/<int:study_id>/versions")
@auth_required("session")
@_form(Permission.MANAGE_STUDY, "ctms.study")
def register_version(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    f = request.form
    kind = f.get("kind", "")
    plan_svc.register_version(uow, current_access(), study_id, kind=kind,
                              label=f.get("label", ""),
                              document_id=_int("document_id", "The document"),  # type: ignore[arg-type]
                              summary=f.get("summary"))
    return f"{plan_svc.KIND_LABELS.get(kind, kind)} {f.get('label', '').strip()} is registered."


@bp.post("/studies/<int:study_id>/approvals")
@auth_required("session")
@_form(Permission.MANAGE_STUDY, "ctms.study")
def approve_version(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    f = request.form
    approved_on = parse_date(f.get("approved_on"), "Approval date")
    if approved_on is None:
        raise ValidationError("Give the date of the IRB/IEC approval.")
    site_id = _int("site_id", "The site")
    _site_of(study_id, site_id)  # type: ignore[arg-type]
    plan_svc.approve_version_at_site(
        uow, current_access(), site_id=site_id,  # type: ignore[arg-type]
        version_id=_int("version_id", "The version"),  # type: ignore[arg-type]
        approval_document_id=_int("approval_document_id", "The approval document"),  # type: ignore[arg-type]
        approved_on=approved_on, activated_on=parse_date(f.get("activated_on"), "Activation date"))
    return "The approval is recorded."


@bp.post("/studies/<int:study_id>/approvals/activate")
@auth_required("session")
@_form(Permission.MANAGE_STUDY, "ctms.study")
def activate_version(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    from ctms.studyplan.models import SiteVersionApproval, StudyDocumentVersion

    approval = db_session().get(SiteVersionApproval, _int("approval_id", "The approval"))
    if approval is None or approval.study_id != study_id:
        raise NotFound("There is no such approval in this study.")
    on = parse_date(request.form.get("activated_on"), "Active from")
    if on is None:
        raise ValidationError("Give the date from which the version is in use at the site.")
    plan_svc.activate_version_at_site(uow, current_access(), approval.id, activated_on=on)
    version = db_session().get(StudyDocumentVersion, approval.version_id)
    site = _site_of(study_id, approval.site_id)
    label = f"{plan_svc.KIND_LABELS.get(version.kind, version.kind)} {version.label}" \
        if version else "The version"
    return f"{label} is active at site {site.number} from {on.isoformat()}."


@bp.post("/studies/<int:study_id>/personnel")
@auth_required("session")
@_form(Permission.MANAGE_STUDY, "ctms.study")
def add_person(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    site = _site_of(study_id, _int("site_id", "The site"))  # type: ignore[arg-type]
    f = request.form
    personnel.add_key_person(uow, current_access(), site.id, name=f.get("name", ""),
                             role=f.get("role", ""), email=f.get("email") or None)
    return f"{' '.join(f.get('name', '').split())} is key personnel of site {site.number}."


@bp.post("/studies/<int:study_id>/personnel/documents")
@auth_required("session")
@_form(Permission.MANAGE_STUDY, "ctms.study")
def link_person_document(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    document = db_session().get(Document, _int("document_id", "The document"))
    if document is None or document.study_id != study_id:
        raise NotFound("There is no such document in this study.")
    personnel.link_document(uow, current_access(), _int("person_id", "The person"),  # type: ignore[arg-type]
                            document.id)
    return f"{document.title} is linked to the person."


def _site_of(study_id: int, site_id: int) -> Site:
    site = db_session().get(Site, site_id)
    if site is None or site.study_id != study_id:
        raise NotFound("There is no such site in this study.")
    return site


@bp.post("/studies/<int:study_id>/sites/status")
@auth_required("session")
@_form(Permission.MANAGE_STUDY, "ctms.study")
def site_status(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    site = _site_of(study_id, _int("site_id", "The site"))  # type: ignore[arg-type]
    to = request.form.get("to", "")
    sites_svc.change_site_status(uow, current_access(), site.id, to,
                                 expected_version=_int("version", "The record version"),  # type: ignore[arg-type]
                                 reason=request.form.get("reason") or None)
    return f"Site {site.number} is now {sites_svc.STATUS_LABELS.get(to, to)}."


@bp.post("/studies/<int:study_id>/sites/target")
@auth_required("session")
@_form(Permission.MANAGE_STUDY, "ctms.study")
def site_target(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    site = _site_of(study_id, _int("site_id", "The site"))  # type: ignore[arg-type]
    target = _int("target", "The enrollment target")
    sites_svc.set_enrollment_target(uow, current_access(), site.id, target)  # type: ignore[arg-type]
    return f"Site {site.number} aims to enroll {target} subjects."


@bp.post("/studies/<int:study_id>/schedule")
@auth_required("session")
@_form(Permission.MANAGE_STUDY, "ctms.study")
def define_visit(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    f = request.form
    day = f.get("day", "").strip()
    if not day.lstrip("-").isdigit() or len(day) > 6:
        raise ValidationError("The day must be a whole number of days from enrollment.")
    subj.define_visit(uow, current_access(), study_id, subj.VisitSpec(
        code=f.get("code", ""), name=f.get("name", ""), day=int(day),
        window_before=_int("window_before", "Window before") or 0,
        window_after=_int("window_after", "Window after") or 0))
    return f"Visit {f.get('code', '').strip()} is in the schedule."


# --- subjects ---------------------------------------------------------------------------------


def _subject_of(study_id: int) -> Subject:
    subject = db_session().get(Subject, _int("subject_id", "The subject"))
    if subject is None or subject.study_id != study_id:
        raise NotFound("There is no such subject in this study.")
    return subject


@bp.post("/studies/<int:study_id>/subjects")
@auth_required("session")
@_form(Permission.MANAGE_SUBJECTS, "ctms.subjects")
def screen(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    site = _site_of(study_id, _int("site_id", "The site"))  # type: ignore[arg-type]
    number = request.form.get("number", "")
    subj.screen_subject(uow, current_access(), site_id=site.id, number=number,
                        screened_on=parse_date(request.form.get("screened_on"), "Screening date"))
    return f"Subject {number.strip()} is in screening at site {site.number}."


@bp.post("/studies/<int:study_id>/subjects/consent")
@auth_required("session")
@_form(Permission.MANAGE_SUBJECTS, "ctms.subjects")
def consent(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    subject = _subject_of(study_id)
    on = parse_date(request.form.get("consented_on"), "Consent date") or _today()
    subj.record_consent(uow, current_access(), subject.id,
                        icf_version_id=_int("icf_version_id", "The ICF version"),  # type: ignore[arg-type]
                        consented_on=on)
    return f"Consent of subject {subject.number} on {on.isoformat()} is recorded."


@bp.post("/studies/<int:study_id>/subjects/status")
@auth_required("session")
@_form(Permission.MANAGE_SUBJECTS, "ctms.subjects")
def subject_status(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    subject = _subject_of(study_id)
    to = subj.ACTIONS.get(request.form.get("action", ""))
    if to is None:
        raise ValidationError("Choose what happened to the subject.")
    subj.change_status(uow, current_access(), subject.id, to,
                       effective_on=parse_date(request.form.get("on"), "Date"),
                       reason=request.form.get("reason") or None)
    return f"Subject {subject.number} is now {subj.STATUS_LABELS_SUBJECT[to]}."


@bp.post("/studies/<int:study_id>/subjects/randomize")
@auth_required("session")
@_form(Permission.MANAGE_SUBJECTS, "ctms.subjects")
def randomize(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    subject = _subject_of(study_id)
    arm = rnd.randomize_subject(uow, current_access(), subject.id,
                                stratum=request.form.get("stratum", ""))
    return f"Subject {subject.number} is randomized to {arm}."


@bp.post("/studies/<int:study_id>/visits/complete")
@auth_required("session")
@_form(Permission.MANAGE_SUBJECTS, "ctms.subjects")
def complete_visit(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    visit = db_session().get(Visit, _int("visit_id", "The visit"))
    if visit is None or visit.study_id != study_id:
        raise NotFound("There is no such visit in this study.")
    on = parse_date(request.form.get("on"), "Visit date") or _today()
    out = subj.complete_visit(uow, current_access(), visit.id, completed_on=on)
    return f"Visit {visit.code} is completed on {on.isoformat()}" + (
        " — outside its window, flagged." if out else ".")


@bp.post("/studies/<int:study_id>/randomization")
@auth_required("session")
@_form(Permission.VIEW_RANDOMIZATION_LIST, "ctms.randomization")
def generate(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    f = request.form
    rnd.generate_list(uow, current_access(), study_id,
                      arms=f.get("arms", "").split(","), strata=f.get("strata", "").split(","),
                      block_size=_int("block_size", "Block size"),  # type: ignore[arg-type]
                      blocks_per_stratum=_int("blocks_per_stratum", "Blocks per stratum"),  # type: ignore[arg-type]
                      seed=f.get("seed") or None)
    return "The randomization list is generated."
