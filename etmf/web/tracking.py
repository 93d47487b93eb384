"""Expected documents, milestones, the completeness dashboard with drill-down lists (CSV),
expiry views, inspection readiness, people, and the in-app task list."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, timedelta

from flask import Blueprint, Response, flash, g, redirect, render_template, request, url_for
from flask_security import auth_required
from sqlalchemy import func, select

from etmf.accounts.roles import ROLES, Permission
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.documents.indexing import index_after_commit
from etmf.documents.models import Document
from etmf.documents.services import FileDocument
from etmf.documents.services import file_document as file_document_service
from etmf.documents.upload import receive_file
from etmf.errors import NotFound, ValidationError
from etmf.reference_model.model import load_reference_model
from etmf.studies.models import Country, Site, Study
from etmf.tracking import metrics, summary
from etmf.tracking import services as tracking
from etmf.tracking.charts import Bar, bar_chart
from etmf.tracking.expected import EntryState, entry_states
from etmf.tracking.expiry import (
    WINDOWS,
    effective_expiry,
    every_expiry,
    expiring_documents,
    validity_days,
)
from etmf.tracking.models import (
    EdlEntry,
    MilestoneDate,
    Person,
    PersonDocument,
    PersonSite,
    TrackingTargets,
)
from etmf.tracking.readiness import readiness as readiness_of
from etmf.web import command, db_session
from etmf.web.studies import load_study

bp = Blueprint("tracking", __name__, url_prefix="/tracking")

NAV = [("Tasks", "tracking.tasks", 40)]
#: Rows shown on one page of a long list (the EDL, the expected documents' states, each kind
#: on the readiness page).
PAGE_ROWS = 100

PROBLEMS = {"open": "Not complete", "missing": "Missing", "not_approved": "Not approved",
            "expired": "Expired", "overdue": "Overdue"}  # each a kind of problem


#: Items of each kind the task list shows per study (the most urgent; a link leads to all).
TASK_ROWS = 10


def _today() -> date:
    return services().clock.now().date()


@bp.app_context_processor
def _globals() -> dict[str, object]:
    return {"tracking_today": _today, "tracking_expiry": _expiry_of}


def _expiry_of(doc: Document) -> tuple[date | None, bool, bool]:
    """For a document list: when the document runs out (its own expiry date, else its date
    plus the artifact's validity, as the tracking views count it), whether that is derived,
    and whether it has run out (documents withdrawn or superseded never are)."""
    validity = g.get("tracking_validity")
    if validity is None:
        validity = g.tracking_validity = validity_days(db_session())
    ends = effective_expiry(doc.expiry_date, doc.document_date, doc.artifact_id, validity)
    expired = ends is not None and ends < _today() and \
        doc.status not in ("obsolete", "superseded", "placeholder")
    return ends, ends is not None and doc.expiry_date is None, expired


def _scoped_states(study_id: int) -> list[EntryState]:
    """The study's EDL states, limited to the sites a site-limited user may see, and to the
    place, level and kind of problem the request asks for (a first cut: :func:`_filter`
    applies every filter)."""
    a = request.args
    level = a.get("level") or None
    states = entry_states(db_session(), study_id, _today(), site_id=_int("site"),
                          country_id=_int("country"), levels=(level,) if level else None,
                          problems_only=a.get("problem", "") in PROBLEMS)
    access = current_access()
    sites = access.site_scope(study_id)
    if sites is not None:
        states = [s for s in states if s.entry.site_id is None or s.entry.site_id in sites]
    zones = access.zone_scope(study_id)
    if zones is not None:  # an inspector limited to some zones of the TMF
        states = [s for s in states if s.entry.zone in zones]
    return states


def _places(study_id: int) -> tuple[dict[int, Site], dict[int, Country]]:
    session = db_session()
    sites = {s.id: s for s in session.scalars(select(Site).where(Site.study_id == study_id))}
    countries = {c.id: c for c in session.scalars(
        select(Country).where(Country.study_id == study_id))}
    return sites, countries


def _int(name: str) -> int | None:
    value = request.values.get(name, "")
    return int(value) if value.strip().isdigit() else None


def _page_of(total: int) -> tuple[int, int]:
    """(the page asked for, clamped to the list, and the number of pages) for ``total`` rows."""
    pages = max(1, -(-total // PAGE_ROWS))
    return min(max(_int("page") or 1, 1), pages), pages


def _date(name: str) -> date | None:
    value = request.values.get(name, "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a date (YYYY-MM-DD).") from None


def _scope_from_form() -> tracking.Scope:
    level = request.form.get("level", "trial")
    return tracking.Scope(level, _int("country_id"), _int("site_id"))


def _csv(filename: str, header: list[str], rows: Iterable[list[object]]) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(["" if v is None else v for v in row] for row in rows)
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# ---- dashboard -------------------------------------------------------------------------------


def figures_of(study_id: int) -> tuple[summary.Figures, TrackingTargets]:
    """The dashboard's figures for the signed-in user (limited to their sites and zones),
    refreshing the study's caches first if anything changed since they were computed."""
    session = db_session()
    model = load_reference_model()
    summary.ensure_fresh(session, services().db.write_session, study_id)
    access = current_access()
    sites, countries = _places(study_id)
    site_label = {k: f"Site {v.number}" for k, v in sites.items()}
    country_label = {k: v.name for k, v in countries.items()}
    targets = tracking.targets_of(session, study_id)
    found = summary.figures(session, study_id, services().clock.now(), {
        "study": lambda _k: "Study",
        "zone": lambda k: f"{k} {model.zone(str(k)).name}",
        "site": lambda k: site_label.get(k, str(k)),  # type: ignore[call-overload]
        "country": lambda k: country_label.get(k, str(k)),  # type: ignore[call-overload]
        "milestone": lambda k: f"{k} {model.milestone(str(k)).name}" if k else "No milestone"},
        filing_target=targets.filing_days, approval_target=targets.approval_days,
        site_ids=access.site_scope(study_id), zones=access.zone_scope(study_id))
    return found, targets



@bp.get("/studies/<int:study_id>")
@auth_required("session")
def dashboard(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    found, targets = figures_of(study_id)
    groups = found.groups
    total = groups["study"][0] if groups["study"] else metrics.Completeness("study", "Study")
    entries_url = lambda **kw: url_for("tracking.entries", study_id=study_id, **kw)  # noqa: E731
    by_zone = sorted(groups["zone"], key=lambda g: str(g.key))
    by_site = sorted((g for g in groups["site"] if g.key is not None),
                     key=lambda g: (g.percent, g.label))
    by_country = sorted((g for g in groups["country"] if g.key is not None),
                        key=lambda g: g.label)
    by_milestone = sorted(groups["milestone"], key=lambda g: str(g.key) or "99")
    zone_chart = bar_chart("Completeness by zone (percent approved of expected)", [
        Bar(g.label, g.percent, f"{g.percent} % ({g.approved} of {g.expected})",
            entries_url(zone=g.key, problem="open")) for g in by_zone])
    site_chart = bar_chart("Completeness by site, lowest first", [
        Bar(g.label, g.percent, f"{g.percent} % · {g.missing} missing",
            entries_url(site=g.key, problem="open")) for g in by_site])
    timeliness, quality, queue = found.timeliness, found.quality, found.queue
    ageing = found.ageing
    ageing_chart = bar_chart("QC queue by days waiting", [
        Bar(label, n, f"{n} document{'s' if n != 1 else ''}") for label, n in ageing],
        maximum=max([n for _l, n in ageing] + [1]))
    trend = found.trend
    trend_chart = bar_chart("Documents approved per week (last 12 weeks)", [
        Bar(f"Week of {d.isoformat()}", n, str(n)) for d, n in trend],
        maximum=max([n for _d, n in trend] + [1]))
    return render_template(
        "tracking/dashboard.html", study=study, total=total, by_zone=by_zone, by_site=by_site,
        by_country=by_country, by_milestone=by_milestone, zone_chart=zone_chart,
        site_chart=site_chart, ageing_chart=ageing_chart, trend_chart=trend_chart,
        timeliness=timeliness, quality=quality, queue=queue, targets=targets,
        has_edl=found.has_edl, windows=WINDOWS)


# ---- drill-down: expected documents ----------------------------------------------------------


def _filter(states: list[EntryState]) -> list[EntryState]:
    a = request.args
    site, country = _int("site"), _int("country")
    if site is not None:
        states = [s for s in states if s.entry.site_id == site]
    if country is not None:
        states = [s for s in states if s.entry.country_id == country]
    if a.get("level"):
        states = [s for s in states if s.entry.level == a["level"]]
    if a.get("zone"):
        states = [s for s in states if s.entry.zone == a["zone"]]
    if a.get("milestone"):
        states = [s for s in states if (s.entry.milestone or "") == a["milestone"]]
    problem = a.get("problem", "")
    if problem == "open":
        states = [s for s in states if not s.complete or s.expired]
    elif problem == "overdue":
        states = [s for s in states if s.overdue]
    elif problem in ("missing", "not_approved", "expired"):
        states = [s for s in states if s.problem == problem.replace("_", " ")]
    return states


def _place_label(e: EdlEntry, sites: dict[int, Site], countries: dict[int, Country]) -> str:
    if e.level == "site" and e.site_id in sites:
        return f"Site {sites[e.site_id].number}"
    if e.level == "country" and e.country_id in countries:
        return countries[e.country_id].name
    return "Trial"


@bp.get("/studies/<int:study_id>/entries")
@auth_required("session")
def entries(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    model = load_reference_model()
    sites, countries = _places(study_id)
    states = _filter(_scoped_states(study_id))
    states.sort(key=lambda s: (s.entry.level != "trial", s.entry.site_id or 0,
                               model.artifact(s.entry.artifact_id).number))
    if request.args.get("format") == "csv":
        return _csv(f"{study.protocol_number}-expected-documents.csv",
                    ["artifact", "name", "level", "place", "required", "approved", "filed",
                     "problem", "due", "overdue", "expires"],
                    ([model.artifact(s.entry.artifact_id).number,
                      model.artifact(s.entry.artifact_id).name, s.entry.level,
                      _place_label(s.entry, sites, countries), s.entry.required_count,
                      s.approved, s.filed, s.problem or "complete",
                      s.due.isoformat() if s.due else None, "yes" if s.overdue else "no",
                      s.expires_on.isoformat() if s.expires_on else None] for s in states))
    site = sites.get(_int("site") or 0)
    total = len(states)  # the CSV above has them all; the page shows one page of them
    page, pages = _page_of(total)
    return render_template(
        "tracking/entries.html", study=study,
        states=states[(page - 1) * PAGE_ROWS:page * PAGE_ROWS], total=total, page=page,
        pages=pages, model=model, sites=sites,
        countries=countries, place_label=_place_label, args=request.args, site=site,
        problems=PROBLEMS,
        can_file=current_access().can(Permission.FILE, study_id, site.id if site else None)
        and study.locked_at is None)


@bp.post("/studies/<int:study_id>/entries/file")
@auth_required("session")
def file_expected(study_id: int):  # type: ignore[no-untyped-def]
    """File the document an EDL entry expects (fills its placeholder if it has one)."""
    load_study(study_id)
    current_access().require(Permission.FILE, study_id)
    entry = db_session().get(EdlEntry, _int("entry_id") or 0)
    if entry is None or entry.study_id != study_id:
        raise NotFound("There is no such expected document.")
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("Choose the file to file.")
    access = current_access()
    access.require(Permission.FILE, study_id, entry.site_id)
    svc = services()
    stored = receive_file(svc.blobs, upload.stream, upload.filename,
                          tmp_dir=svc.settings.instance_path / "tmp",
                          max_bytes=svc.settings.max_upload_mb * 1024 * 1024)
    artifact = load_reference_model().artifact(entry.artifact_id)
    with command() as uow:
        doc_id = file_document_service(uow, access, FileDocument(
            study_id=study_id, artifact=entry.artifact_id,
            title=request.form.get("title", "").strip() or artifact.name, file=stored,
            level=entry.level, country_id=entry.country_id, site_id=entry.site_id,
            document_date=_date("document_date"), expiry_date=_date("expiry_date")))
        index_after_commit(uow, svc, doc_id)
        uow.commit()
    flash(f"Filed {artifact.name} as a draft; send it to QC from its page.", "success")
    back = request.form.get("next", "")
    return redirect(back if back.startswith("/tracking/") else
                    url_for("documents.detail", document_id=doc_id))


# ---- expiry ------------------------------------------------------------------------------------


@bp.get("/studies/<int:study_id>/expiry")
@auth_required("session")
def expiry(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    window = request.args.get("window", "30")
    expired = window == "expired"
    days = int(window) if window.isdigit() and int(window) in WINDOWS else 30
    found = expiring_documents(db_session(), study_id, _today(), within_days=days,
                               expired=expired,
                               site_ids=current_access().site_scope(study_id))
    sites, _countries = _places(study_id)
    if request.args.get("format") == "csv":
        return _csv(f"{study.protocol_number}-{'expired' if expired else f'expiring-{days}'}.csv",
                    ["document_id", "title", "artifact", "site", "person", "expires", "days_left"],
                    ([e.document_id, e.title, e.artifact_number,
                      sites[e.site_id].number if e.site_id in sites else None, e.person,
                      e.expires_on.isoformat(), e.days_left] for e in found))
    return render_template("tracking/expiry.html", study=study, found=found, sites=sites,
                           window="expired" if expired else str(days), windows=WINDOWS)


# ---- readiness ---------------------------------------------------------------------------------


@bp.get("/studies/<int:study_id>/readiness")
@auth_required("session")
def readiness(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    site_id = _int("site")
    access = current_access()
    scope = access.site_scope(study_id)
    if scope is not None and site_id not in scope:
        site_id = min(scope) if scope else None
    sites, countries = _places(study_id)
    if site_id is not None and site_id not in sites:
        raise NotFound("There is no such site in this study.")
    r = readiness_of(db_session(), study_id, _today(), site_id=site_id)
    return render_template("tracking/readiness.html", study=study, r=r, sites=sites,
                           countries=countries, site=sites.get(site_id or 0),
                           model=load_reference_model(), place_label=_place_label,
                           shown=PAGE_ROWS)


# ---- the EDL, milestones, targets (study managers) -----------------------------------------------


@bp.get("/studies/<int:study_id>/edl")
@auth_required("session")
def edl(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    sites, countries = _places(study_id)
    # One page of entries at a time, optionally at one place: a study of 500 sites has some
    # 60,000, each row with two forms (the whole list was a 100 MB page).
    where = [EdlEntry.study_id == study_id]
    place = request.args.get("place", "")
    if place == "trial":
        where.append(EdlEntry.level == "trial")
    elif place.startswith("country-") and place[8:].isdigit():
        where += [EdlEntry.level == "country", EdlEntry.country_id == int(place[8:])]
    elif place.startswith("site-") and place[5:].isdigit():
        where.append(EdlEntry.site_id == int(place[5:]))
    else:
        place = ""
    total = session.scalar(select(func.count()).select_from(EdlEntry).where(*where)) or 0
    page, pages = _page_of(total)
    rows = session.scalars(select(EdlEntry).where(*where)
                           .order_by(EdlEntry.level.desc(), EdlEntry.site_id,
                                     EdlEntry.country_id, EdlEntry.artifact_id, EdlEntry.id)
                           .offset((page - 1) * PAGE_ROWS).limit(PAGE_ROWS)).all()
    milestones = session.scalars(select(MilestoneDate).where(
        MilestoneDate.study_id == study_id).order_by(MilestoneDate.code)).all()
    return render_template(
        "tracking/edl.html", study=study, rows=rows, total=total, page=page, pages=pages,
        place=place, sites=sites, countries=countries,
        model=load_reference_model(), place_label=_place_label, milestones=milestones,
        targets=tracking.targets_of(session, study_id), reminder_roles=REMINDER_ROLES,
        can_manage=current_access().can(Permission.MANAGE_STUDY, study_id))


def _back_to_edl(study_id: int):  # type: ignore[no-untyped-def]
    return redirect(url_for("tracking.edl", study_id=study_id))


@bp.post("/studies/<int:study_id>/edl/generate")
@auth_required("session")
def generate(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.MANAGE_STUDY, study_id)
    with command() as uow:
        n = tracking.generate_edl(uow, current_access(), study_id,
                                  include_recommended=request.form.get("recommended") == "on")
        uow.commit()
    flash(f"{n} expected documents added from the Reference Model." if n else
          "Every place of the study already has its expected documents.", "success")
    return _back_to_edl(study_id)


@bp.post("/studies/<int:study_id>/edl/add")
@auth_required("session")
def add_entry(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.MANAGE_STUDY, study_id)
    with command() as uow:
        tracking.add_entry(uow, current_access(), study_id, _scope_from_form(),
                           request.form.get("artifact", ""),
                           required_count=_int("required_count") or 1,
                           milestone=request.form.get("milestone") or None)
        uow.commit()
    flash("Expected document added.", "success")
    return _back_to_edl(study_id)


@bp.post("/studies/<int:study_id>/edl/change")
@auth_required("session")
def change_entry(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.MANAGE_STUDY, study_id)
    entry_id = _int("entry_id") or 0
    entry = db_session().get(EdlEntry, entry_id)
    if entry is None or entry.study_id != study_id:
        raise NotFound("There is no such expected document.")
    with command() as uow:
        if request.form.get("remove"):
            tracking.remove_entry(uow, current_access(), entry_id,
                                  reason=request.form.get("reason"))
        else:
            tracking.change_entry(uow, current_access(), entry_id,
                                  required_count=_int("required_count"),
                                  milestone=request.form.get("milestone"))
        uow.commit()
    flash("Expected document removed." if request.form.get("remove") else
          "Expected document changed.", "success")
    return _back_to_edl(study_id)


@bp.post("/studies/<int:study_id>/edl/placeholders")
@auth_required("session")
def placeholders(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.MANAGE_STUDY, study_id)
    with command() as uow:
        n = tracking.create_placeholders(uow, current_access(), study_id, site_id=_int("site_id"))
        uow.commit()
    flash(f"{n} placeholders created.", "success")
    return _back_to_edl(study_id)


@bp.post("/studies/<int:study_id>/milestones")
@auth_required("session")
def set_milestone(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.MANAGE_STUDY, study_id)
    with command() as uow:
        tracking.set_milestone_dates(uow, current_access(), study_id, _scope_from_form(),
                                     request.form.get("code", ""), planned=_date("planned"),
                                     actual=_date("actual"))
        uow.commit()
    flash("Milestone dates saved.", "success")
    return _back_to_edl(study_id)


def _reminder_roles(study_id: int) -> dict[str, object]:
    """The roles ticked in the targets form (a form without the role boxes keeps them)."""
    if request.form.get("roles_shown"):
        return {k: request.form.getlist(k) for k in ("expiry_roles", "milestone_roles")}
    targets = tracking.targets_of(db_session(), study_id)
    return {"expiry_roles": targets.expiry_roles, "milestone_roles": targets.milestone_roles}


#: Roles that may be chosen as reminder recipients (administrators and inspectors are not
#: members who act on the TMF).
REMINDER_ROLES = [r for code, r in ROLES.items() if code not in ("admin", "inspector")]


@bp.post("/studies/<int:study_id>/targets")
@auth_required("session")
def set_targets(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.MANAGE_STUDY, study_id)
    with command() as uow:
        tracking.set_targets(uow, current_access(), study_id,
                             filing_days=_int("filing_days") or 0,
                             approval_days=_int("approval_days") or 0,
                             expiry_reminders=request.form.get("expiry_reminders", ""),
                             milestone_reminders=request.form.get("milestone_reminders", ""),
                             **_reminder_roles(study_id))
        uow.commit()
    flash("Targets and reminder thresholds saved.", "success")
    return _back_to_edl(study_id)


# ---- people ------------------------------------------------------------------------------------


@bp.get("/studies/<int:study_id>/persons")
@auth_required("session")
def persons(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    sites, _countries = _places(study_id)
    links = session.execute(select(Person, PersonSite).join(
        PersonSite, PersonSite.person_id == Person.id).where(PersonSite.site_id.in_(list(sites)))
        .order_by(Person.name, Person.id, PersonSite.site_id, PersonSite.role)).all()
    people: dict[int, dict[str, object]] = {}
    for person, link in links:
        p = people.setdefault(person.id, {"person": person, "sites": [], "documents": []})
        p["sites"].append((sites[link.site_id], link.role))  # type: ignore[attr-defined]
    if people:
        for pid, doc in session.execute(select(PersonDocument.person_id, Document).join(
                Document, Document.id == PersonDocument.document_id).where(
                PersonDocument.person_id.in_(list(people)))):
            people[pid]["documents"].append(doc)  # type: ignore[attr-defined]
    return render_template("tracking/persons.html", study=study, people=list(people.values()),
                           sites=sites,
                           can_manage=current_access().can(Permission.MANAGE_STUDY, study_id))


@bp.post("/studies/<int:study_id>/persons")
@auth_required("session")
def add_person(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.MANAGE_STUDY, study_id)
    site_id = _int("site_id") or 0
    site = db_session().get(Site, site_id)
    if site is None or site.study_id != study_id:
        raise ValidationError("Choose a site of this study.")
    with command() as uow:
        person_id = _int("person_id")
        if person_id:
            tracking.link_person_to_site(uow, current_access(), person_id, site_id,
                                         request.form.get("role", ""))
        else:
            tracking.create_person(uow, current_access(), name=request.form.get("name", ""),
                                   email=request.form.get("email"), site_id=site_id,
                                   role=request.form.get("role", ""))
        uow.commit()
    flash("Saved.", "success")
    return redirect(url_for("tracking.persons", study_id=study_id))


@bp.post("/studies/<int:study_id>/persons/document")
@auth_required("session")
def link_document(study_id: int):  # type: ignore[no-untyped-def]
    load_study(study_id)
    current_access().require(Permission.FILE, study_id)
    doc = db_session().get(Document, _int("document_id") or 0)
    if doc is None or doc.study_id != study_id:
        raise ValidationError("Give the id of a document of this study.")
    with command() as uow:
        tracking.link_person_document(uow, current_access(), _int("person_id") or 0, doc.id)
        uow.commit()
    flash("The document is now the person's: it counts at every site where they work.",
          "success")
    return redirect(url_for("tracking.persons", study_id=study_id))


# ---- the in-app task list ---------------------------------------------------------------------


@bp.get("/tasks")
@auth_required("session")
def tasks():  # type: ignore[no-untyped-def]
    """What needs doing soon in every study of the user: documents expired or expiring in
    30 days, milestones due in 30 days, overdue expected documents."""
    access = current_access()
    session = db_session()
    today = _today()
    items = []
    for study in session.scalars(select(Study).where(Study.id.in_(access.study_ids()))
                                 .order_by(Study.protocol_number)):
        if not access.can(Permission.FILE, study.id) and \
                not access.can(Permission.MANAGE_STUDY, study.id):
            continue
        scope = access.site_scope(study.id)
        runs_out = every_expiry(session, study.id, today, site_ids=scope)  # one pass for both
        gone = [e for e in runs_out if e.days_left < 0]
        soon = [e for e in runs_out if 0 <= e.days_left <= 30]
        ms = session.scalars(select(MilestoneDate).where(
            MilestoneDate.study_id == study.id, MilestoneDate.actual.is_(None),
            MilestoneDate.planned.is_not(None),
            MilestoneDate.planned <= today + timedelta(days=30))
            .order_by(MilestoneDate.planned)).all()
        if scope is not None:
            ms = [m for m in ms if m.site_id is None or m.site_id in scope]
        states = entry_states(session, study.id, today, problems_only=True)  # overdue: open
        overdue = sum(1 for s in states if s.overdue and (
            scope is None or s.entry.site_id is None or s.entry.site_id in scope))
        items.append({"study": study, "expired": gone, "expiring": soon, "milestones": ms,
                      "overdue": overdue})
    return render_template("tracking/tasks.html", items=items, today=today,
                           model=load_reference_model(), shown=TASK_ROWS)
