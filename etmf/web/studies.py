"""A study's TMF: zone → section → artifact with counts, and the document list."""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_security import auth_required
from markupsafe import Markup, escape
from sqlalchemy import func, select

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.documents import counts
from etmf.documents.lifecycle import (
    PLACEHOLDER,
    SIGNPOST,
    VISIBLE_WITHOUT_DRAFTS,
    State,
    status_label,
)
from etmf.documents.models import Document
from etmf.errors import Forbidden, NotFound, ValidationError
from etmf.reference_model.model import ReferenceModel, UnknownArtifact, load_reference_model
from etmf.studies import services as studies
from etmf.studies.models import Study
from etmf.web import command, db_session
from etmf.web.filter_menus import filter_menus

bp = Blueprint("studies", __name__, url_prefix="/studies")

NAV = [("Study archive", "studies.archive", 90, "admin")]

#: Orders of the document list. By document date, undated records come last whichever way
#: the dates run (REC-5). Written with NULLS LAST rather than an "IS NULL" sort key, so that
#: the (study, document date, …) index reads them in order (no index serves an expression
#: key without an expression index, which SQLite's reflection cannot read back).
SORTS = {
    "document_date": (Document.document_date.desc().nulls_last(), Document.id.desc()),
    "-document_date": (Document.document_date.asc().nulls_last(), Document.id.asc()),
    "filed": (Document.created_at.desc(), Document.id.desc()),
    "title": (Document.title.asc(), Document.id.desc()),
    "artifact": (Document.artifact_number.asc(), Document.id.desc()),
}

#: Columns of the TMF tree and filters of the list: lifecycle states, then records
#: without a file of their own (REC-7).
STATUSES = [(s.value, s.label) for s in State] + [(PLACEHOLDER, status_label(PLACEHOLDER)),
                                                  (SIGNPOST, status_label(SIGNPOST))]


def load_study(study_id: int) -> Study:
    access = current_access()
    access.require(Permission.VIEW_STUDY, study_id)
    study = db_session().get(Study, study_id)
    if study is None:
        raise NotFound("There is no such study, or you have no access to it.")
    return study


@dataclass(frozen=True)
class Scope:
    """What of a study's TMF the signed-in user sees: None means no limit."""

    sites: frozenset[int] | None
    statuses: tuple[str, ...] | None
    zones: frozenset[str] | None


def document_scope(study_id: int) -> Scope:
    access = current_access()
    return Scope(
        sites=access.site_scope(study_id),
        statuses=(None if access.can(Permission.VIEW_DRAFTS, study_id)
                  else tuple(VISIBLE_WITHOUT_DRAFTS)),
        zones=access.zone_scope(study_id))  # an inspector limited to some zones of the TMF


def visible_documents(study_id: int):  # type: ignore[no-untyped-def]
    """A select of the study's documents this user may see (scoping inside the query)."""
    scope = document_scope(study_id)
    q = select(Document).where(Document.study_id == study_id)
    if scope.sites is not None:
        # Not "site_id IS NULL OR site_id IN (…)": that reads every study-level document
        # through the site index and sorts them; written so, the list walks its date index.
        q = q.where(func.coalesce(Document.site_id, 0).in_([0, *sorted(scope.sites)]))
    if scope.statuses is not None:
        q = q.where(Document.status.in_(scope.statuses))
    if scope.zones is not None:
        q = q.where(Document.zone.in_(scope.zones))
    return q


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


@bp.get("/<int:study_id>")
@auth_required("session")
def overview(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    model = load_reference_model()
    scope = document_scope(study_id)
    rows = counts.tree(session, study_id, sites=scope.sites, statuses=scope.statuses,
                       zones=scope.zones)
    by_artifact: dict[str, dict[str, int]] = {}
    by_zone: dict[str, int] = {}
    for zone, _section, artifact_id, status, n in rows:
        by_artifact.setdefault(artifact_id, {}).setdefault(status, 0)
        by_artifact[artifact_id][status] += n
        by_zone[zone] = by_zone.get(zone, 0) + n
    # The rows of the tree as the page shows them: every artifact of the model with its
    # label, and its cells (one per status) where it has documents. Labels and cells come
    # ready, as markup: a few thousand of them escaped one by one in the template cost more
    # than the counts.
    labels = _artifact_labels(model)
    tree = [(zone, by_zone.get(zone.number, 0), [
        (section, [(a, labels[a.unique_id], _count_cells(by_artifact[a.unique_id])
                    if a.unique_id in by_artifact else None)
                   for a in model.artifacts_of(section)])
        for section in model.sections_of(zone)]) for zone in model.zones]
    return render_template(
        "study.html", study=study, tree=tree, states=STATUSES,
        list_url=url_for("studies.documents", study_id=study_id),
    )


@functools.cache
def _artifact_labels(model: ReferenceModel) -> dict[str, Markup]:
    """Number and name of every artifact, escaped once per process (the model is fixed)."""
    return {a.unique_id: escape(a.label) for a in model.artifacts}


def _count_cells(by_status: dict[str, int]) -> Markup:
    """One table cell per status of the tree: a count, or empty. Numbers need no escaping."""
    counts = (int(by_status[value]) if value in by_status else "" for value, _l in STATUSES)
    return Markup("".join(f'<td class="num">{n}</td>' for n in counts))


@bp.get("/<int:study_id>/documents")
@auth_required("session")
def documents(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    args = request.args
    q = visible_documents(study_id)
    # The filters the kept counts know; any other (person, dates) is counted in SQL.
    known: dict[str, object] = {}
    if args.get("artifact"):
        q = q.where(Document.artifact_id == args["artifact"])
        known["artifact"] = args["artifact"]
    if args.get("zone"):
        q = q.where(Document.zone == args["zone"])
        known["zone"] = args["zone"]
    if args.get("status"):
        q = q.where(Document.status == args["status"])
        known["status"] = args["status"]
    if args.get("site", "").isdigit():
        q = q.where(Document.site_id == int(args["site"]))
        known["site"] = int(args["site"])
    if args.get("country", "").isdigit():
        q = q.where(Document.country_id == int(args["country"]))
        known["country"] = int(args["country"])
    if args.get("person"):
        q = q.where(Document.person.ilike(f"%{args['person']}%"))
    if (d_from := _parse_date(args.get("from"))) is not None:
        q = q.where(Document.document_date >= d_from)
    if (d_to := _parse_date(args.get("to"))) is not None:
        q = q.where(Document.document_date <= d_to)
    sort = args.get("sort", "document_date")
    if sort not in SORTS:
        sort = "document_date"
    if (d_from is None and d_to is None) or sort not in ("document_date", "-document_date"):
        q = q.order_by(*SORTS[sort])
    else:  # a date range: every row is dated, read in date order from the range's index
        q = q.order_by(*((Document.document_date.desc(), Document.id.desc())
                         if sort == "document_date"
                         else (Document.document_date.asc(), Document.id.asc())))
    page = max(1, int(args["page"])) if args.get("page", "").isdigit() else 1
    per_page = 50
    if args.get("person") or d_from is not None or d_to is not None:
        total = session.scalar(select(func.count()).select_from(q.order_by(None).subquery()))
    else:
        scope = document_scope(study_id)
        total = counts.count(session, study_id, sites=scope.sites, statuses=scope.statuses,
                             zones=scope.zones, **known)  # type: ignore[arg-type]
    total = total or 0
    docs = session.scalars(q.limit(per_page).offset((page - 1) * per_page)).all()
    # A Phase III study has hundreds of sites on every page: their menus are kept rendered.
    menus = filter_menus(session, study_id)
    model = load_reference_model()
    artifact_label = args.get("artifact", "")
    if artifact_label:
        with contextlib.suppress(UnknownArtifact):
            artifact_label = model.artifact(artifact_label).label
    return render_template(
        "documents.html", study=study, docs=docs, site_numbers=menus.site_numbers,
        site_options=menus.sites(args.get("site", "")),
        country_options=menus.countries(args.get("country", "")),
        model=model, artifact_label=artifact_label, args=args, sort=sort, page=page, total=total,
        per_page=per_page, states=STATUSES, status_label=status_label,
    )


# --- study lock (archive), administrators only ----------------------------------------------


def _require_admin() -> None:
    if not current_access().is_admin:
        raise Forbidden("Only an administrator can lock or unlock a study.")


@bp.get("/archive")
@auth_required("session")
def archive():  # type: ignore[no-untyped-def]
    """Every study with its lock state; administrators lock and unlock here."""
    _require_admin()
    rows = db_session().scalars(select(Study).order_by(Study.protocol_number)).all()
    return render_template("documents/archive.html", studies=rows)


@bp.post("/<int:study_id>/lock")
@auth_required("session")
def lock(study_id: int):  # type: ignore[no-untyped-def]
    return _lock_change(study_id, studies.lock_study, "locked: everything is read-only")


@bp.post("/<int:study_id>/unlock")
@auth_required("session")
def unlock(study_id: int):  # type: ignore[no-untyped-def]
    return _lock_change(study_id, studies.unlock_study, "unlocked")


def _lock_change(study_id: int, change, what: str):  # type: ignore[no-untyped-def]
    _require_admin()
    expected = request.form.get("version", "")
    if not expected.isdigit():
        raise ValidationError("The form is missing the record version; reload the page.")
    with command() as uow:
        change(uow, current_access(), study_id, reason=request.form.get("reason"),
               expected_version=int(expected))
        uow.commit()
    study = db_session().get(Study, study_id)
    flash(f"Study {study.protocol_number if study else study_id} is {what}.", "success")
    return redirect(url_for("studies.archive"))
