"""A study's TMF: zone → section → artifact with counts, and the document list."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, render_template, request
from flask_security import auth_required
from sqlalchemy import func, select

from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.documents.lifecycle import State
from etmf.documents.models import Document
from etmf.errors import NotFound
from etmf.reference_model.model import load_reference_model
from etmf.studies.models import Site, Study
from etmf.web import db_session

bp = Blueprint("studies", __name__, url_prefix="/studies")

SORTS = {
    "document_date": Document.document_date.desc(),
    "-document_date": Document.document_date.asc(),
    "title": Document.title.asc(),
    "artifact": Document.artifact_number.asc(),
}


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
        q = q.where(Document.status.in_([State.APPROVED.value, State.SUPERSEDED.value]))
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
        states=list(State),
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
    q = q.order_by(SORTS.get(sort, SORTS["document_date"]), Document.id.desc())
    page = max(1, int(args["page"])) if args.get("page", "").isdigit() else 1
    per_page = 50
    total = session.scalar(select(func.count()).select_from(q.order_by(None).subquery())) or 0
    docs = session.scalars(q.limit(per_page).offset((page - 1) * per_page)).all()
    sites = session.scalars(select(Site).where(Site.study_id == study_id)
                            .order_by(Site.number)).all()
    return render_template(
        "documents.html", study=study, docs=docs, sites=sites, sites_by_id={s.id: s for s in sites},
        model=load_reference_model(), args=args, sort=sort, page=page, total=total,
        per_page=per_page, states=list(State),
    )
