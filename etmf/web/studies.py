"""A study's TMF: zone → section → artifact with counts, and the document list."""

from __future__ import annotations

import contextlib
from datetime import date

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_security import auth_required
from sqlalchemy import func, select

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.documents.lifecycle import (
    PLACEHOLDER,
    SIGNPOST,
    VISIBLE_WITHOUT_DRAFTS,
    State,
    status_label,
)
from etmf.documents.models import Document
from etmf.errors import Forbidden, NotFound, ValidationError
from etmf.reference_model.model import UnknownArtifact, load_reference_model
from etmf.studies import services as studies
from etmf.studies.models import Site, Study
from etmf.web import command, db_session

bp = Blueprint("studies", __name__, url_prefix="/studies")

NAV = [("Study archive", "studies.archive", 90, "admin")]

SORTS = {
    "document_date": Document.document_date.desc(),
    "-document_date": Document.document_date.asc(),
    "filed": Document.created_at.desc(),
    "title": Document.title.asc(),
    "artifact": Document.artifact_number.asc(),
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


def visible_documents(study_id: int):  # type: ignore[no-untyped-def]
    """A select of the study's documents this user may see (scoping inside the query)."""
    access = current_access()
    q = select(Document).where(Document.study_id == study_id)
    sites = access.site_scope(study_id)
    if sites is not None:
        q = q.where((Document.site_id.is_(None)) | (Document.site_id.in_(sites)))
    if not access.can(Permission.VIEW_DRAFTS, study_id):
        q = q.where(Document.status.in_(VISIBLE_WITHOUT_DRAFTS))
    zones = access.zone_scope(study_id)
    if zones is not None:  # an inspector limited to some zones of the TMF
        q = q.where(Document.zone.in_(zones))
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
    base = visible_documents(study_id).subquery()
    rows = session.execute(
        select(base.c.zone, base.c.section, base.c.artifact_id, base.c.status, func.count())
        .group_by(base.c.zone, base.c.section, base.c.artifact_id, base.c.status)
    ).all()
    by_artifact: dict[str, dict[str, int]] = {}
    by_zone: dict[str, int] = {}
    for zone, _section, artifact_id, status, n in rows:
        by_artifact.setdefault(artifact_id, {}).setdefault(status, 0)
        by_artifact[artifact_id][status] += n
        by_zone[zone] = by_zone.get(zone, 0) + n
    return render_template(
        "study.html", study=study, model=model, by_artifact=by_artifact, by_zone=by_zone,
        states=STATUSES,
    )


@bp.get("/<int:study_id>/documents")
@auth_required("session")
def documents(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    session = db_session()
    args = request.args
    q = visible_documents(study_id)
    if args.get("artifact"):
        q = q.where(Document.artifact_id == args["artifact"])
    if args.get("zone"):
        q = q.where(Document.zone == args["zone"])
    if args.get("status"):
        q = q.where(Document.status == args["status"])
    if args.get("site", "").isdigit():
        q = q.where(Document.site_id == int(args["site"]))
    if args.get("person"):
        q = q.where(Document.person.ilike(f"%{args['person']}%"))
    if (d_from := _parse_date(args.get("from"))) is not None:
        q = q.where(Document.document_date >= d_from)
    if (d_to := _parse_date(args.get("to"))) is not None:
        q = q.where(Document.document_date <= d_to)
    sort = args.get("sort", "document_date")
    # Undated records last whichever way the dates run (REC-5: ordered by document date).
    order = SORTS.get(sort, SORTS["document_date"])
    if sort in ("document_date", "-document_date"):
        q = q.order_by(Document.document_date.is_(None), order, Document.id.desc())
    else:
        q = q.order_by(order, Document.id.desc())
    page = max(1, int(args["page"])) if args.get("page", "").isdigit() else 1
    per_page = 50
    total = session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    docs = session.scalars(q.limit(per_page).offset((page - 1) * per_page)).all()
    sites = session.scalars(select(Site).where(Site.study_id == study_id)
                            .order_by(Site.number)).all()
    model = load_reference_model()
    artifact_label = args.get("artifact", "")
    if artifact_label:
        with contextlib.suppress(UnknownArtifact):
            artifact_label = model.artifact(artifact_label).label
    return render_template(
        "documents.html", study=study, docs=docs, sites=sites, sites_by_id={s.id: s for s in sites},
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
