"""Monitoring pages: visits (plan, record, report), action items, deviations and SAEs.

Forms post to one command each; a refusal the user can act on comes back on the page as a
message, permission refusals stay 403/404 as everywhere else.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_security import auth_required
from sqlalchemy import select

from ctms.deviations import services as dev
from ctms.monitoring import services as mon
from ctms.monitoring.models import ActionItem
from ctms.safety import services as safety
from ctms.subjects.models import Subject
from etmf.accounts.models import Membership, User
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.documents.services import StoredFile
from etmf.errors import BadUpload, Conflict, InvalidTransition, NotFound, ValidationError
from etmf.studies.models import Site
from etmf.web import command, db_session
from etmf.web.documents import parse_date
from etmf.web.studies import load_study
from etmf.workflows.services import request_link

bp = Blueprint("monitoring", __name__, url_prefix="/ctms")

_SHOWN = (ValidationError, InvalidTransition, Conflict, NotFound, BadUpload)


def _today() -> date:
    return services().clock.now().date()


def _visible_sites(study_id: int) -> list[Site]:
    scope = current_access().site_scope(study_id)
    return [s for s in db_session().scalars(select(Site).where(Site.study_id == study_id)
                                            .order_by(Site.number))
            if scope is None or s.id in scope]


def _site_filter(study_id: int) -> tuple[list[Site], frozenset[int], Site | None]:
    sites = _visible_sites(study_id)
    chosen = request.args.get("site", type=int)
    picked = next((s for s in sites if s.id == chosen), None)
    return sites, frozenset([picked.id] if picked else [s.id for s in sites]), picked


def _int(name: str, label: str) -> int:
    value = request.form.get(name, "").strip()
    if not value.isdigit() or len(value) > 9:
        raise ValidationError(f"{label} must be chosen.")
    return int(value)


def _date(name: str, label: str, *, required: bool = True) -> date | None:
    value = parse_date(request.form.get(name), label)
    if value is None and required:
        raise ValidationError(f"Give the {label.lower()}.")
    return value


def _form(back: Callable[..., str], permission: Permission
          ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A POST handler of a study page: permission on the study first, then the command;
    its message or refusal is flashed."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(fn)
        def view(study_id: int, **kwargs: Any):  # type: ignore[no-untyped-def]
            current_access().require(permission, study_id)
            try:
                with command() as uow:
                    message = fn(uow, study_id, **kwargs)
                    uow.commit()
            except _SHOWN as refused:
                flash(refused.message, "error")
                return redirect(back(study_id, **kwargs))  # type: ignore[call-arg]
            flash(message, "success")
            return redirect(back(study_id, **kwargs))  # type: ignore[call-arg]

        return view

    return wrap


def _visits_page(study_id: int, **_: Any) -> str:
    return url_for("monitoring.visits", study_id=study_id)


def _visit_page(study_id: int, visit_id: int) -> str:
    return url_for("monitoring.visit", study_id=study_id, visit_id=visit_id)


def _people(study_id: int, site_id: int | None, roles: tuple[str, ...]) -> list[User]:
    rows = db_session().scalars(select(User).join(Membership, Membership.user_id == User.id)
                                .where(Membership.study_id == study_id,
                                       Membership.role.in_(roles),
                                       Membership.revoked_at.is_(None), User.active.is_(True))
                                .order_by(User.full_name)).unique().all()
    seen: dict[int, User] = {}
    for u in rows:
        seen.setdefault(u.id, u)
    return list(seen.values())


# --- visits -----------------------------------------------------------------------------------


@bp.get("/studies/<int:study_id>/monitoring")
@auth_required("session")
def visits(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    access = current_access()
    today = _today()
    sites, site_ids, picked = _site_filter(study_id)
    by_id = {s.id: s for s in sites}
    items = list(session.scalars(select(ActionItem).where(
        ActionItem.study_id == study_id, ActionItem.site_id.in_(list(site_ids)),
        ActionItem.status == "open").order_by(ActionItem.due_on))) if site_ids else []
    return render_template(
        "monitoring/visits.html", study=study, sites=sites, picked=picked, by_id=by_id,
        visits=mon.visits(session, study_id, site_ids), items=items, today=today,
        due=mon.visits_due(session, sites),
        late_reports=mon.overdue_reports(session, study_id, today, site_ids),
        report_days=mon.REPORT_DAYS,
        rule=mon.rule_of(session, study_id), kinds=mon.KINDS, modes=mon.MODES,
        cras=_people(study_id, None, ("cra", "monitor")),
        can_record=access.can(Permission.RECORD_MONITORING, study_id),
        can_manage=access.can(Permission.MANAGE_STUDY, study_id))


@bp.get("/studies/<int:study_id>/monitoring/visits/<int:visit_id>")
@auth_required("session")
def visit(study_id: int, visit_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    access = current_access()
    v = mon.load_visit(session, access, visit_id)
    if v.study_id != study_id:
        abort(404)
    return render_template(
        "monitoring/visit.html", study=study, visit=v, site=session.get(Site, v.site_id),
        findings=mon.findings_of(session, v.id), items=mon.action_items_of(session, v.id),
        kinds=mon.KINDS, modes=mon.MODES, categories=mon.CATEGORIES,
        severities=mon.SEVERITIES, today=_today(), report_due=mon.report_due(session, v),
        managers=_people(study_id, v.site_id, ("study_manager",)),
        can_record=access.can(Permission.RECORD_MONITORING, study_id, v.site_id))


@bp.get("/studies/<int:study_id>/monitoring/sites/<int:site_id>")
@auth_required("session")
def site_page(study_id: int, site_id: int):  # type: ignore[no-untyped-def]
    """One site's oversight: next visit due and why, overdue reports and action items,
    its visits, its key risk indicators and the EDC entries behind the data-entry lag."""
    from ctms.risk.services import entry_lags, heat_map

    study = load_study(study_id)
    session = db_session()
    access = current_access()
    site = next((s for s in _visible_sites(study_id) if s.id == site_id), None)
    if site is None:
        abort(404)
    today = _today()
    only = frozenset([site.id])
    kri = (heat_map(session, study_id, today, only)
           if access.can(Permission.VIEW_RISK, study_id) else [])
    return render_template(
        "monitoring/site.html", study=study, site=site, today=today,
        due=mon.visit_due(session, site), visits=mon.visits(session, study_id, only),
        late_reports=mon.overdue_reports(session, study_id, today, only),
        items=list(session.scalars(select(ActionItem).where(
            ActionItem.site_id == site.id, ActionItem.status == "open")
            .order_by(ActionItem.due_on))),
        kri=kri[0] if kri else None, lags=[e for e in entry_lags(session, study_id, today)
                                          if e.site_id == site.id],
        subjects={s.id: s.number for s in session.scalars(
            select(Subject).where(Subject.site_id == site.id))},
        kinds=mon.KINDS, modes=mon.MODES)


@bp.post("/studies/<int:study_id>/monitoring/rule")
@auth_required("session")
@_form(_visits_page, Permission.MANAGE_STUDY)
def set_rule(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    weeks = _optional_int("interval_weeks", "The interval")
    subjects = _optional_int("every_subjects", "The number of new subjects")
    report_days = _optional_int("report_days", "The report target")
    mon.set_rule(uow, current_access(), study_id, weeks, subjects, report_days)
    rules = ([f"every {weeks} weeks"] if weeks else []) + (
        [f"after {subjects} new subject(s)"] if subjects else [])
    return (f"Each site is now due a monitoring visit {' or '.join(rules)}"
            + (", whichever comes first." if len(rules) == 2 else "."))


def _optional_int(name: str, label: str) -> int | None:
    value = request.form.get(name, "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        raise ValidationError(f"{label} must be a whole number.")
    return int(value)


@bp.post("/studies/<int:study_id>/monitoring/visits")
@auth_required("session")
@_form(_visits_page, Permission.RECORD_MONITORING)
def plan(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    access = current_access()
    access.require(Permission.RECORD_MONITORING, study_id)
    site = db_session().get(Site, _int("site_id", "The site"))
    if site is None or site.study_id != study_id:
        raise NotFound("There is no such site in this study.")
    planned_on = _date("planned_on", "Planned date")
    assert planned_on is not None
    mon.plan_visit(uow, access, site_id=site.id, kind=request.form.get("kind", ""),
                   mode=request.form.get("mode", ""), planned_on=planned_on,
                   cra_user_id=_int("cra_user_id", "The CRA"))
    return f"A visit of site {site.number} is planned on {planned_on.isoformat()}."


def _rows(prefix: str, fields: tuple[str, ...], n: int) -> list[dict[str, str]]:
    rows = []
    for i in range(1, n + 1):
        row = {f: request.form.get(f"{prefix}{i}_{f}", "").strip() for f in fields}
        if any(row.values()):
            rows.append(row)
    return rows


@bp.post("/studies/<int:study_id>/monitoring/visits/<int:visit_id>/record")
@auth_required("session")
@_form(_visit_page, Permission.RECORD_MONITORING)
def record(uow, study_id: int, visit_id: int) -> str:  # type: ignore[no-untyped-def]
    visited_on = _date("visited_on", "Visit date")
    assert visited_on is not None
    findings = tuple(mon.NewFinding(r["category"], r["severity"], r["description"])
                     for r in _rows("finding", ("category", "severity", "description"), 3)
                     if r["description"])
    items = []
    for n, r in enumerate(_rows("action", ("description", "owner", "due_on"), 2), start=1):
        due = parse_date(r["due_on"], f"Due date of action item {n}")
        if due is None:
            raise ValidationError(f"Action item {n} needs a due date.")
        items.append(mon.NewActionItem(r["description"], r["owner"], due))
    mon.record_visit(uow, current_access(), visit_id, mon.VisitRecord(
        visited_on=visited_on, attendees=request.form.get("attendees", ""),
        subjects_reviewed=request.form.get("subjects_reviewed", ""),
        documents_reviewed=request.form.get("documents_reviewed", ""),
        summary=request.form.get("summary", ""), findings=findings, action_items=tuple(items)))
    return (f"The visit is recorded with {len(findings)} finding(s) and {len(items)} action "
            "item(s).")


@bp.post("/studies/<int:study_id>/monitoring/visits/<int:visit_id>/report")
@auth_required("session")
def report(study_id: int, visit_id: int):  # type: ignore[no-untyped-def]
    access = current_access()
    access.require(Permission.RECORD_MONITORING, study_id)
    svc = services()
    back = _visit_page(study_id, visit_id)
    try:
        v = mon.load_visit(db_session(), access, visit_id, Permission.RECORD_MONITORING)
        if v.status != "recorded":
            raise InvalidTransition("Record the visit first; a report is generated once.")
        pdf = mon.report_pdf(db_session(), v, access.name)
        ref = svc.blobs.put(io.BytesIO(pdf))
        stored = StoredFile(sha256=ref.sha256, size=ref.size, mime="application/pdf",
                            filename=f"monitoring-visit-{v.id}.pdf")
        with command() as uow:
            doc_id = mon.file_report(
                uow, access, visit_id, file=stored,
                manager_user_id=_int("manager_user_id", "The reviewing manager"),
                link=lambda rid: request_link(svc.settings.server_name_for_mail, rid),
                notify=svc.mailer.send)
            uow.commit()
    except _SHOWN as refused:
        flash(refused.message, "error")
        return redirect(back)
    flash("The report is filed in the TMF and waits for your signature, then the manager's.",
          "success")
    return redirect(url_for("documents.detail", document_id=doc_id))


@bp.post("/studies/<int:study_id>/monitoring/visits/<int:visit_id>/letter")
@auth_required("session")
def letter(study_id: int, visit_id: int):  # type: ignore[no-untyped-def]
    access = current_access()
    access.require(Permission.RECORD_MONITORING, study_id)
    svc = services()
    back = _visit_page(study_id, visit_id)
    try:
        v = mon.load_visit(db_session(), access, visit_id, Permission.RECORD_MONITORING)
        if v.study_id != study_id:
            raise NotFound("There is no such monitoring visit.")
        if v.status == "planned" or v.letter_document_id is not None:
            raise InvalidTransition("Record the visit first; the letter is generated once.")
        pdf = mon.letter_pdf(db_session(), v, access.name)
        ref = svc.blobs.put(io.BytesIO(pdf))
        stored = StoredFile(sha256=ref.sha256, size=ref.size, mime="application/pdf",
                            filename=f"monitoring-visit-{v.id}-follow-up-letter.pdf")
        with command() as uow:
            doc_id = mon.file_letter(
                uow, access, visit_id, file=stored,
                link=lambda rid: request_link(svc.settings.server_name_for_mail, rid),
                notify=svc.mailer.send)
            uow.commit()
    except _SHOWN as refused:
        flash(refused.message, "error")
        return redirect(back)
    flash("The follow-up letter is filed in the TMF (05.04.12) and waits for your signature.",
          "success")
    return redirect(url_for("documents.detail", document_id=doc_id))


@bp.post("/studies/<int:study_id>/monitoring/action-items/close")
@auth_required("session")
@_form(_visits_page, Permission.RECORD_MONITORING)
def close_item(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    item = db_session().get(ActionItem, _int("item_id", "The action item"))
    if item is None or item.study_id != study_id:
        raise NotFound("There is no such action item in this study.")
    mon.close_action_item(uow, current_access(), item.id)
    return "The action item is closed."


# --- deviations -------------------------------------------------------------------------------


def _deviations_page(study_id: int, **_: Any) -> str:
    return url_for("monitoring.deviations", study_id=study_id)


@bp.get("/studies/<int:study_id>/deviations")
@auth_required("session")
def deviations(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    access = current_access()
    sites, site_ids, picked = _site_filter(study_id)
    subjects = session.scalars(select(Subject).where(Subject.study_id == study_id,
                                                     Subject.site_id.in_(list(site_ids)))
                               .order_by(Subject.number)).all() if site_ids else []
    return render_template(
        "monitoring/deviations.html", study=study, sites=sites, picked=picked,
        by_id={s.id: s for s in sites}, subjects=subjects,
        numbers={s.id: s.number for s in subjects},
        deviations=dev.deviations(session, study_id, site_ids), today=_today(),
        counts=dev.counts_by_site(session, study_id), categories=dev.CATEGORIES,
        labels=dev.STATUS_LABELS,
        can_record=access.can(Permission.RECORD_DEVIATIONS, study_id))


@bp.post("/studies/<int:study_id>/deviations")
@auth_required("session")
@_form(_deviations_page, Permission.RECORD_DEVIATIONS)
def log_deviation(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    site = db_session().get(Site, _int("site_id", "The site"))
    if site is None or site.study_id != study_id:
        raise NotFound("There is no such site in this study.")
    subject = request.form.get("subject_id", "").strip()
    occurred = _date("occurred_on", "Date occurred")
    identified = _date("identified_on", "Date identified")
    assert occurred is not None and identified is not None
    dev.log_deviation(uow, current_access(), dev.NewDeviation(
        site_id=site.id, category=request.form.get("category", ""),
        description=request.form.get("description", ""), occurred_on=occurred,
        identified_on=identified, important=request.form.get("important") == "yes",
        capa=request.form.get("capa", ""),
        subject_id=int(subject) if subject.isdigit() else None))
    return f"The deviation at site {site.number} is logged."


@bp.post("/studies/<int:study_id>/deviations/review")
@auth_required("session")
@_form(_deviations_page, Permission.RECORD_DEVIATIONS)
def review_deviation(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    dev_id = _int("deviation_id", "The deviation")
    dev.review_deviation(uow, current_access(), dev_id,
                         important=request.form.get("important") == "yes",
                         capa=request.form.get("capa"))
    return "The deviation is reviewed."


@bp.post("/studies/<int:study_id>/deviations/close")
@auth_required("session")
@_form(_deviations_page, Permission.RECORD_DEVIATIONS)
def close_deviation(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    dev.close_deviation(uow, current_access(), _int("deviation_id", "The deviation"))
    return "The deviation is closed."


# --- serious adverse events ---------------------------------------------------------------------


def _safety_page(study_id: int, **_: Any) -> str:
    return url_for("monitoring.safety_page", study_id=study_id)


@bp.get("/studies/<int:study_id>/safety")
@auth_required("session")
def safety_page(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    access = current_access()
    sites, site_ids, picked = _site_filter(study_id)
    today = _today()
    rows = safety.saes(session, study_id, site_ids)
    return render_template(
        "monitoring/safety.html", study=study, sites=sites, picked=picked,
        by_id={s.id: s for s in sites}, saes=rows, today=today,
        states={s.id: safety.clock_state(s, today) for s in rows},
        late={s.id: safety.is_late(s, today) for s in rows},
        clock=safety.clock_of(session, study_id),
        can_report=access.can(Permission.REPORT_SAFETY, study_id),
        can_manage=access.can(Permission.MANAGE_STUDY, study_id))



@bp.post("/studies/<int:study_id>/safety")
@auth_required("session")
@_form(_safety_page, Permission.REPORT_SAFETY)
def report_sae(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    site = db_session().get(Site, _int("site_id", "The site"))
    if site is None or site.study_id != study_id:
        raise NotFound("There is no such site in this study.")
    aware = _date("awareness_on", "Awareness date")
    assert aware is not None
    subject = request.form.get("subject_id", "").strip()
    f = request.form
    sae_id = safety.report_sae(uow, current_access(), safety.NewSae(
        site_id=site.id, term=f.get("term", ""), seriousness=f.get("seriousness", ""),
        awareness_on=aware, fatal=f.get("fatal") == "yes",
        life_threatening=f.get("life_threatening") == "yes", expected=f.get("expected") == "yes",
        subject_id=int(subject) if subject.isdigit() else None,
        narrative=f.get("narrative", "")))
    return f"SAE {sae_id} is recorded."


@bp.post("/studies/<int:study_id>/safety/submitted")
@auth_required("session")
def submit_sae(study_id: int):  # type: ignore[no-untyped-def]
    from etmf.documents.upload import receive_file

    access = current_access()
    access.require(Permission.REPORT_SAFETY, study_id)
    try:
        submitted = _date("submitted_on", "Submission date")
        assert submitted is not None
        sae = safety.load_sae(db_session(), access, _int("sae_id", "The SAE"),
                              Permission.REPORT_SAFETY)
        upload = request.files.get("report")
        stored = None
        if upload and upload.filename:
            svc = services()
            stored = receive_file(svc.blobs, upload.stream, upload.filename,
                                  tmp_dir=svc.settings.instance_path / "tmp",
                                  max_bytes=svc.settings.max_upload_mb * 1024 * 1024)
        with command() as uow:
            safety.record_submission(uow, access, sae.id, submitted_on=submitted,
                                     report=stored)
            uow.commit()
    except _SHOWN as refused:
        flash(refused.message, "error")
        return redirect(_safety_page(study_id))
    flash("The submission is recorded" + (" and the report filed (07.02.02)." if stored
                                           else "."), "success")
    return redirect(_safety_page(study_id))


@bp.post("/studies/<int:study_id>/safety/clock")
@auth_required("session")
@_form(_safety_page, Permission.MANAGE_STUDY)
def set_clock(uow, study_id: int) -> str:  # type: ignore[no-untyped-def]
    fatal, other = _int("fatal_days", "The fatal clock"), _int("other_days", "The other clock")
    safety.set_clock(uow, current_access(), study_id, fatal_days=fatal, other_days=other)
    return f"SAE clocks: {fatal} days (fatal or life-threatening), {other} days (other)."
