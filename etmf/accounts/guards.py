"""Request guards: inactivity timeout, inspector windows, read-only inspectors, and the
audit of every document an inspector opens or downloads (ACC-3, ACC-7).

They work on every route, whichever area defines it, so a new page needs nothing to be
covered:

* **Inactivity** (ACC-7): the time of the last request is kept in the session (from the
  injected clock); a request after ``settings.session_timeout_minutes`` without one signs
  the user out (audited as ``user.logout`` with cause ``inactivity``) and sends them to the
  sign-in page with a message. ``templates/static/js/session.js`` warns a minute before.
* **Windows**: an inspector whose access window ended (or an account locked meanwhile) is
  signed out at the next request, with the reason.
* **Read-only**: any request of an inspector other than GET/HEAD/OPTIONS (and sign-out)
  answers 403, whatever the route.
* **Access log**: any successful GET by an inspector of a route with a ``document_id``
  writes ``document.viewed`` (or ``document.downloaded`` when the answer is a file) to the
  stream ``document_access``/<document id>. A separate stream, so that reading never bumps
  the document's own version (which guards concurrent edits); the event carries the
  study id, so study and inspector audit trails show it. If the event cannot be written the
  document is not served. Zone limits of an inspector grant are enforced here too (404).
* **Watermark**: a PDF downloaded by an inspector gets "Inspection copy — name — UTC time"
  on every page, added to the copy on the fly (etmf.accounts.watermark).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import Flask, Response, flash, g, jsonify, redirect, request, session, url_for
from flask_login import current_user

from etmf.audit.store import Context, unit_of_work
from etmf.clock import utc_iso
from etmf.errors import Forbidden, NotFound

log = logging.getLogger("etmf.security")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Endpoints an inspector may POST to: signing out, and raising an inspection request (which
#: changes no record of the TMF; the service still checks RAISE_INSPECTION_REQUEST).
READ_ONLY_ALLOWED = frozenset({"security.logout", "inspection.raise_request",
                               "api_exchange.raise_request"})
LAST_SEEN = "etmf_last_seen"
#: How stale the activity mark may be before a request renews it.
ACTIVITY_STEP = timedelta(seconds=60)


def _svc():  # type: ignore[no-untyped-def]
    from etmf.bootstrap import services

    return services()


def init_app(app: Flask) -> None:
    app.before_request(_session_guard)
    app.before_request(_read_only_guard)
    app.before_request(_inspector_document_guard)
    app.after_request(_inspector_document_access)
    app.jinja_env.globals["session_seconds_left"] = seconds_left


def mark_activity() -> None:
    session[LAST_SEEN] = utc_iso(_svc().clock.now())


def _last_seen() -> datetime | None:
    """The session's activity mark, None when it has none (or an unreadable one)."""
    text = session.get(LAST_SEEN)
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


def seconds_left() -> int:
    """Seconds until the session ends without activity, by the mark the server counts from
    (up to a step older than the last request): what session.js warns before."""
    svc = _svc()
    full = svc.settings.session_timeout_minutes * 60
    seen = _last_seen()
    if seen is None:
        return full
    return max(0, min(full, int(full - (svc.clock.now() - seen).total_seconds())))


def _is_session_user() -> bool:
    return bool(getattr(current_user, "is_authenticated", False)) and not g.get(
        "etmf_token_auth")


def _session_guard():  # type: ignore[no-untyped-def]
    if request.endpoint in (None, "static") or not _is_session_user():
        return None
    svc = _svc()
    now = svc.clock.now()
    minutes = svc.settings.session_timeout_minutes
    seen = _last_seen()
    if seen is None or now - seen > timedelta(minutes=minutes):
        return _end_session(
            "inactivity",
            f"You were signed out after {minutes} minutes without activity. Sign in again.")
    from etmf.accounts.authn import inspection_window_refusal

    if current_user.locked_at is not None:
        return _end_session("account locked", "Your account was locked. Ask an administrator.")
    from etmf.accounts.authn import auth_session

    refusal = inspection_window_refusal(auth_session(), current_user._get_current_object(), now)
    if refusal:
        return _end_session("inspection window over", refusal)
    if now - seen >= min(ACTIVITY_STEP, timedelta(minutes=minutes) / 10):
        # Written at most once a step: the cookie is then re-signed and sent only then, and
        # a session ends at most one step before its timeout, never after it.
        session[LAST_SEEN] = utc_iso(now)
    return None


def _end_session(cause: str, message: str):  # type: ignore[no-untyped-def]
    from flask_security.utils import logout_user

    g.etmf_logout_cause = cause
    logout_user()
    session.pop(LAST_SEEN, None)
    g.pop("etmf_access", None)
    if request.path.startswith("/api/"):
        body = {"error": {"status": 401, "code": "session_ended", "title": "Signed out",
                          "message": message, "request_id": g.get("request_id", "")}}
        return jsonify(body), 401
    flash(message, "info")
    target = url_for("security.login")
    if request.method == "GET":
        target = url_for("security.login", next=request.full_path.rstrip("?"))
    return redirect(target)


def _read_only_guard() -> None:
    if request.method in SAFE_METHODS or request.endpoint in READ_ONLY_ALLOWED:
        return
    enforce_read_only()


def enforce_read_only() -> None:
    """Refuse any change by a read-only (inspector) user, whatever the route."""
    from etmf.accounts.security import current_access

    if request.method in SAFE_METHODS or request.endpoint in READ_ONLY_ALLOWED:
        return
    if getattr(current_user, "is_authenticated", False) and current_access().read_only:
        raise Forbidden("Inspection access is read-only: you can look at everything you "
                        "were granted, but you cannot change anything.")


def _inspector_document_guard() -> None:
    from etmf.accounts.security import current_access

    args = request.view_args or {}
    if "document_id" not in args or not getattr(current_user, "is_authenticated", False):
        return
    access = current_access()
    if not access.read_only:
        return
    from etmf.accounts.authn import auth_session
    from etmf.documents.models import Document

    doc = auth_session().get(Document, int(args["document_id"]))
    if doc is None:
        return  # the route answers its own 404
    if not access.can_see_zone(doc.study_id, doc.zone):
        raise NotFound("There is no such document, or you have no access to it.")
    g.etmf_inspected = (doc.id, doc.study_id)


def _inspector_document_access(response: Response) -> Response:
    inspected = g.pop("etmf_inspected", None)
    if inspected is None or request.method != "GET" or response.status_code != 200:
        return response
    from etmf.accounts.security import current_access

    doc_id, study_id = inspected
    access = current_access()
    is_file = "Content-Disposition" in response.headers
    watermarked = False
    now = _svc().clock.now()
    if is_file and response.mimetype == "application/pdf":
        from etmf.accounts.watermark import WatermarkError, inspection_copy

        response.direct_passthrough = False
        try:
            data = inspection_copy(response.get_data(), access.name, now)
        except WatermarkError as exc:
            log.warning("inspection copy of document %s refused: %s", doc_id, exc)
            return _refused(str(exc))
        response.set_data(data)
        watermarked = True
    svc = _svc()
    ctx = Context(request_id=g.get("request_id"), client_addr=request.remote_addr)
    with unit_of_work(svc.db, svc.clock, access.actor, ctx) as uow:
        uow.emit("document_access", doc_id,
                 "document.downloaded" if is_file else "document.viewed",
                 {"document_id": doc_id, "page": request.endpoint,
                  "path": request.path[:300], "watermarked": watermarked},
                 study_id=study_id)
        uow.commit()
    return response


def _refused(message: str) -> Response:
    from flask import render_template

    title = "The inspection copy could not be made"
    text = f"{message} The file was not served; ask the sponsor for a paper copy."
    if request.path.startswith("/api/"):
        return jsonify({"error": {"status": 422, "code": "no_inspection_copy", "title": title,
                                  "message": text}}), 422  # type: ignore[return-value]
    return Response(render_template("error.html", status=422, title=title, message=text,
                                    request_id=g.get("request_id", "")), status=422)
