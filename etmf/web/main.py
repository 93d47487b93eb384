"""Home page and health endpoints."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask_security import auth_required
from sqlalchemy import func, select

from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.documents.models import Document
from etmf.studies.models import Study
from etmf.web import db_session

bp = Blueprint("main", __name__)


@bp.get("/")
@auth_required("session")
def home():  # type: ignore[no-untyped-def]
    access = current_access()
    session = db_session()
    ids = access.study_ids()
    studies = (
        session.scalars(select(Study).where(Study.id.in_(ids)).order_by(Study.protocol_number))
        .all() if ids else []
    )
    counts = dict(
        session.execute(
            select(Document.study_id, func.count()).where(Document.study_id.in_(ids))
            .group_by(Document.study_id)
        ).all()
    ) if ids else {}
    return render_template("home.html", studies=studies, counts=counts)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    """Alive: the process answers. Says nothing about its dependencies."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():  # type: ignore[no-untyped-def]
    """Ready: database, storage and search reachable. 503 with the failing part otherwise."""
    from etmf.checks import readiness

    results = readiness(services())
    ok = all(r.ok for r in results)
    body = {"status": "ok" if ok else "unavailable",
            "checks": {r.name: ("ok" if r.ok else r.detail) for r in results}}
    return jsonify(body), 200 if ok else 503
