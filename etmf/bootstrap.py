"""The composition root: the one place that wires real adapters into the app."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from etmf.clock import Clock, SystemClock
from etmf.db import Database
from etmf.settings import Settings, ensure_secret_key, load_settings


@dataclass
class Services:
    """Everything a request or command needs, created once per app."""

    settings: Settings
    db: Database
    clock: Clock
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def blobs(self):  # type: ignore[no-untyped-def]
        from etmf.storage_adapter import blob_store

        return blob_store(self)

    @property
    def mailer(self):  # type: ignore[no-untyped-def]
        mailer = self.extras.get("mailer")
        if mailer is None:
            from etmf.mail import make_mailer

            mailer = self.extras["mailer"] = make_mailer(self.settings)
        return mailer

    @property
    def search(self):  # type: ignore[no-untyped-def]
        index = self.extras.get("search")
        if index is None:
            from etmf.search.factory import open_index

            if self.settings.search_backend == "whoosh":
                index = open_index("whoosh", path=self.settings.search_path)
            else:
                index = open_index("postgres", engine=self.db.engine)
            self.extras["search"] = index
        return index


def services(app: Flask | None = None) -> Services:
    from flask import current_app

    return (app or current_app).extensions["etmf"]  # type: ignore[no-any-return]


def shutdown(app: Flask) -> None:
    """Release what an app holds: stop its job runner thread (if one started) and its
    background indexing (after what is queued), then close the database pool. A thread
    left running would open connections after the pool closed, and they would be left open."""
    from etmf.documents import indexing

    svc = services(app)
    runner = svc.extras.pop("jobs_runner", None)
    if runner is not None:
        runner.stop()
    indexing.shutdown(svc)
    svc.db.dispose()


def configure_settings(settings: Settings | None) -> Settings:
    settings = settings or load_settings()
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    return ensure_secret_key(settings)


def make_flask(settings: Settings) -> Flask:
    ui = files("etmf.ui")
    app = Flask(
        "etmf",
        template_folder=str(ui / "pages"),
        static_folder=str(ui / "static"),
        instance_path=str(settings.instance_path),
    )
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        MAX_CONTENT_LENGTH=settings.max_upload_mb * 1024 * 1024 + 1024 * 1024,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=settings.session_timeout_minutes * 60,
        # The cookie is renewed when the activity mark is (guards.ACTIVITY_STEP).
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_TIME_LIMIT=None,
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
    )
    if settings.trusted_proxies:
        app.wsgi_app = TrustedProxies(  # type: ignore[method-assign]
            app.wsgi_app, settings.trusted_proxies, settings.trusted_proxy_addresses)
    return app


class TrustedProxies:
    """Believe X-Forwarded-For/-Proto only from the configured proxy addresses.

    Werkzeug's ProxyFix trusts the headers of whoever connects; a client that reaches an
    app server directly could then forge its address into the audit trail. Requests from
    elsewhere lose those headers before the app sees them.
    """

    def __init__(self, app: Any, hops: int, addresses: tuple[str, ...]) -> None:
        import ipaddress

        self._direct = app
        self._proxied = ProxyFix(app, x_for=hops, x_proto=hops)
        self._networks = [ipaddress.ip_network(a, strict=False) for a in addresses]

    def _trusted(self, remote: str) -> bool:
        import ipaddress

        try:
            address = ipaddress.ip_address(remote)
        except ValueError:
            return False
        return any(address in network for network in self._networks)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if self._trusted(environ.get("REMOTE_ADDR", "")):
            return self._proxied(environ, start_response)
        for header in ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO",
                       "HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PORT",
                       "HTTP_X_FORWARDED_PREFIX"):
            environ.pop(header, None)
        return self._direct(environ, start_response)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            record.request_id = g.get("request_id", "-")
        except RuntimeError:  # outside a request
            record.request_id = "-"
        return True


def init_logging(app: Flask, settings: Settings) -> None:
    logger = logging.getLogger("etmf")
    logger.setLevel(settings.log_level.upper())
    if not any(getattr(h, "_etmf", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler._etmf = True  # type: ignore[attr-defined]
        handler.addFilter(_RequestIdFilter())
        if settings.log_format == "json":
            fmt = ('{"time":"%(asctime)s","level":"%(levelname)s","request_id":"%(request_id)s",'
                   '"logger":"%(name)s","message":"%(message)s"}')
        else:
            fmt = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"
        handler.setFormatter(logging.Formatter(fmt))
        logger.addHandler(handler)
        logger.propagate = False


def init_services(app: Flask, settings: Settings) -> Services:
    # Importing the projections registers them with the event store.
    import etmf.projections  # noqa: F401

    svc = Services(settings=settings, db=Database(settings), clock=SystemClock())
    app.extensions["etmf"] = svc
    return svc


def init_security(app: Flask, svc: Services) -> None:
    from etmf.accounts.security import init_security as _init

    _init(app, svc)


def init_request_context(app: Flask) -> None:
    @app.before_request
    def _assign_request_id() -> None:
        incoming = request.headers.get("X-Request-Id", "")
        g.request_id = incoming[:64] if incoming.isprintable() and incoming else uuid.uuid4().hex

    @app.after_request
    def _headers(response):  # type: ignore[no-untyped-def]
        response.headers["X-Request-Id"] = g.get("request_id", "")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if request.is_secure:
            response.headers.setdefault("Strict-Transport-Security",
                                        "max-age=31536000; includeSubDomains")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'self'; object-src 'self'",
        )
        return response

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def init_jobs(app: Flask) -> None:
    """Start the in-process job runner with the first request (thread runner only), so the
    embedded server runs its exports and daily tasks without a separate worker."""
    from etmf.jobs import ThreadRunner, runner_for

    started = False

    @app.before_request
    def _start_job_runner() -> None:
        nonlocal started
        if not started:
            started = True
            runner = runner_for(app)
            if isinstance(runner, ThreadRunner):
                runner.wake()


def register_blueprints(app: Flask) -> None:
    from etmf.web import register

    register(app)


def register_error_handlers(app: Flask) -> None:
    from etmf.web.errors import register

    register(app)


def register_cli(app: Flask) -> None:
    from etmf.cli import register_flask_cli

    register_flask_cli(app)
