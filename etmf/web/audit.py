"""Audit trail pages: per study (timeline), per object and per user, filtered, exported.

Readable by those with the audit permission (auditors, inspectors, study managers) and,
for user trails, administrators. Writable by nobody: there is no form that changes it.
"""

from __future__ import annotations

import re
from datetime import date

from flask import Blueprint, Response, render_template, request, stream_with_context
from flask_security import auth_required

from etmf.accounts.models import User
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.audit import queries
from etmf.audit.queries import AuditFilter
from etmf.bootstrap import services
from etmf.errors import Forbidden, NotFound
from etmf.studies.models import Study
from etmf.web import db_session

bp = Blueprint("audit", __name__, url_prefix="/audit")

PER_PAGE = 100
_STREAM_TYPE = re.compile(r"^[a-z_]{1,40}$")


def _date(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def _int(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() else None


def _filter(**fixed: object) -> AuditFilter:
    stream_type = request.args.get("object") or None
    return AuditFilter(
        actor_id=_int("actor"),
        event_type=request.args.get("action") or None,
        stream_type=stream_type if stream_type and _STREAM_TYPE.match(stream_type) else None,
        date_from=_date("from"), date_to=_date("to"), **fixed,  # type: ignore[arg-type]
    )


def _render(title: str, subtitle: str, f: AuditFilter, export_endpoint: str,
            **route_args: object):  # type: ignore[no-untyped-def]
    session = db_session()
    page = max(1, _int("page") or 1)
    fmt = request.args.get("format")
    if fmt == "csv":
        session_for_stream = services().db.read_session()

        def generate():  # type: ignore[no-untyped-def]
            try:
                yield from queries.stream_csv(queries.iter_all(session_for_stream, f))
            finally:
                session_for_stream.close()

        return Response(stream_with_context(generate()), mimetype="text/csv",
                        headers={"Content-Disposition":
                                 f'attachment; filename="audit-trail-{export_endpoint}.csv"'})
    if fmt == "pdf":
        views = [queries.describe_event(e) for e in queries.iter_all(session, f)]
        pdf = queries.render_pdf(title, subtitle, views, services().clock.now(),
                                 current_access().name)
        return Response(pdf, mimetype="application/pdf",
                        headers={"Content-Disposition":
                                 f'attachment; filename="audit-trail-{export_endpoint}.pdf"'})
    total = queries.count(session, f)
    return render_template(
        "audit/trail.html", title=title, subtitle=subtitle,
        events=queries.page(session, f, offset=(page - 1) * PER_PAGE, limit=PER_PAGE),
        total=total, page=page, per_page=PER_PAGE, actors=queries.actors(session, f),
        actions=queries.event_types(session, f), object_types=queries.stream_types(session, f),
        args=request.args, endpoint=request.endpoint, route_args=route_args,
    )


@bp.get("/studies/<int:study_id>")
@auth_required("session")
def study_trail(study_id: int):  # type: ignore[no-untyped-def]
    current_access().require(Permission.VIEW_AUDIT, study_id)
    study = db_session().get(Study, study_id)
    if study is None:
        raise NotFound("There is no such study, or you have no access to it.")
    f = _filter(study_id=study_id)
    return _render(f"Audit trail of study {study.protocol_number}", study.title, f,
                   f"study-{study.protocol_number}", study_id=study_id)


@bp.get("/studies/<int:study_id>/<object_type>/<object_id>")
@auth_required("session")
def object_trail(study_id: int, object_type: str, object_id: str):  # type: ignore[no-untyped-def]
    current_access().require(Permission.VIEW_AUDIT, study_id)
    if not _STREAM_TYPE.match(object_type):
        raise NotFound("There is no such kind of record.")
    f = AuditFilter(study_id=study_id, stream_type=object_type, stream_id=object_id,
                    actor_id=_int("actor"), event_type=request.args.get("action") or None,
                    date_from=_date("from"), date_to=_date("to"))
    if queries.count(db_session(), AuditFilter(study_id=study_id, stream_type=object_type,
                                               stream_id=object_id)) == 0:
        raise NotFound("There is no such record in this study, or you have no access to it.")
    return _render(f"Audit trail of {object_type} {object_id}", "", f,
                   f"{object_type}-{object_id}", study_id=study_id, object_type=object_type,
                   object_id=object_id)


@bp.get("/users/<int:user_id>")
@auth_required("session")
def user_trail(user_id: int):  # type: ignore[no-untyped-def]
    """Everything one user did, or was done to their account (administrators)."""
    if not current_access().is_admin:
        raise Forbidden("Only administrators can read a user's whole audit trail.")
    user = db_session().get(User, user_id)
    if user is None:
        raise NotFound("There is no such user.")
    f = AuditFilter(actor_id=user_id, event_type=request.args.get("action") or None,
                    date_from=_date("from"), date_to=_date("to"))
    return _render(f"Audit trail of {user.full_name}", user.email, f, f"user-{user_id}",
                   user_id=user_id)


DOCUMENT_PANELS = ["audit/_document_panel.html"]
