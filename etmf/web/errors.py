"""Errors mapped to HTTP status once: a readable page for people, JSON under /api/."""

from __future__ import annotations

import logging

from flask import Flask, g, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from etmf.errors import EtmfError, ServiceUnavailable
from storage.errors import StorageError, StorageUnavailable

log = logging.getLogger("etmf.web")

_PLAIN = {
    400: ("The request could not be processed",
          "Something in what was sent is not right. Go back, check the form and try again."),
    403: ("You are not allowed to do this",
          "Your role does not include this action. Ask your study manager if you need it."),
    404: ("Page not found",
          "There is nothing at this address, or you do not have access to it."),
    405: ("This action is not available here",
          "Use the buttons on the page rather than typing the address."),
    409: ("Someone else changed this first",
          "The record changed since you opened it. Reload the page and make your change again."),
    413: ("The file is too large",
          "The upload is larger than this server accepts. Split it or ask an administrator."),
    500: ("Something went wrong on our side",
          "Nothing you did caused this. The error was logged with the request id below; "
          "give it to your administrator."),
    503: ("A service is unavailable",
          "The server cannot reach its database, storage or search right now. "
          "Nothing was saved; try again in a few minutes."),
}


def _wants_json() -> bool:
    return request.path.startswith("/api/") or (
        request.accept_mimetypes.best == "application/json"
    )


def _respond(status: int, code: str, title: str, message: str, detail: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    request_id = g.get("request_id", "")
    if _wants_json():
        body = {"error": {"status": status, "code": code, "title": title, "message": message,
                          "request_id": request_id, **({"detail": detail} if detail else {})}}
        return jsonify(body), status
    return (
        render_template("error.html", status=status, title=title, message=message,
                        request_id=request_id),
        status,
    )


def register(app: Flask) -> None:
    @app.errorhandler(EtmfError)
    def _domain(exc: EtmfError):  # type: ignore[no-untyped-def]
        if exc.status >= 500:
            log.error("%s: %s", exc.code, exc.message)
        return _respond(exc.status, exc.code, exc.title, exc.message, exc.detail)

    @app.errorhandler(StorageUnavailable)
    def _storage_down(exc: StorageUnavailable):  # type: ignore[no-untyped-def]
        log.error("storage unavailable: %s", exc)
        return _respond(503, "storage_unavailable", "Document storage is unavailable",
                        f"{exc} Nothing was saved; try again in a few minutes.")

    @app.errorhandler(StorageError)
    def _storage(exc: StorageError):  # type: ignore[no-untyped-def]
        log.error("storage error: %s", exc)
        return _respond(500, "storage_error", "The stored file could not be read",
                        f"{exc} The file was not served. Your administrator has been alerted.")

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError):  # type: ignore[no-untyped-def]
        return _respond(400, "csrf", "The form expired",
                        "The form was open too long or came from another site. "
                        "Reload the page and submit it again.")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException):  # type: ignore[no-untyped-def]
        status = exc.code or 500
        title, message = _PLAIN.get(status, (exc.name, exc.description or ""))
        return _respond(status, exc.name.lower().replace(" ", "_"), title, message)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # type: ignore[no-untyped-def]
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            log.error("database unavailable: %s", exc)
            err = ServiceUnavailable("The database cannot be reached right now.")
            return _respond(503, err.code, _PLAIN[503][0], _PLAIN[503][1])
        log.exception("unhandled error")
        return _respond(500, "internal_error", *_PLAIN[500])
