"""Single sign-on pages: sign in with an identity provider, come back, sign out of both;
and the signing ceremony's detour to the provider to re-enter the password (SIG-4)."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    request,
    session,
    url_for,
)
from flask_security import auth_required
from flask_security.utils import login_user, logout_user

from etmf.accounts.roles import Permission
from etmf.accounts.security import csrf, current_access
from etmf.audit.store import Actor, Context, unit_of_work
from etmf.bootstrap import services
from etmf.documents.models import Document
from etmf.errors import EtmfError, NotFound, ValidationError
from etmf.sso import services as sso
from etmf.sso.config import ProviderConfig, load_providers, providers_path
from etmf.sso.oidc import OidcProvider
from etmf.sso.provider import Provider, SsoRefused
from etmf.web import db_session
from etmf.workflows import services as workflow

bp = Blueprint("sso", __name__)

PENDING = "etmf_sso_pending"
SIGNED_IN = "etmf_sso"


def registry(app: Flask | None = None) -> dict[str, Provider]:
    """The configured providers of this app, read once."""
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    found = app.extensions.get("etmf_sso_providers")
    if found is None:
        settings = services(app).settings
        configs = load_providers(providers_path(settings.instance_path,
                                                settings.oidc_providers_file))
        found = app.extensions["etmf_sso_providers"] = {c.name: OidcProvider(c)
                                                        for c in configs}
    return found  # type: ignore[no-any-return]


def _provider(name: str) -> Provider:
    provider = registry().get(name)
    if provider is None:
        raise NotFound("There is no such identity provider on this server.")
    return provider


def _configs() -> dict[str, ProviderConfig]:
    return {name: p.config for name, p in registry().items()}


def _callback_url(name: str) -> str:
    return url_for("sso.callback", name=name, _external=True)


def _context() -> Context:
    return Context(request_id=g.get("request_id"), client_addr=request.remote_addr)


def _safe_next(target: str | None) -> str:
    return target if target and target.startswith("/") and not target.startswith("//") else "/"


@bp.app_context_processor
def _helpers() -> dict[str, object]:
    def sso_providers() -> list[ProviderConfig]:
        return list(_configs().values())

    def sso_signing_provider(user_id: int) -> ProviderConfig | None:
        link = sso.identity_of(db_session(), user_id, _configs())
        return _configs()[link.provider] if link is not None else None

    return {"sso_providers": sso_providers, "sso_signing_provider": sso_signing_provider}


# ---- sign-in ----------------------------------------------------------------------------


@bp.get("/sso/<name>/login")
def login(name: str):  # type: ignore[no-untyped-def]
    provider = _provider(name)
    url, pending = provider.begin(_callback_url(name))
    session[PENDING] = {**pending, "provider": name, "purpose": "login",
                        "next": _safe_next(request.args.get("next"))}
    return redirect(url)


@bp.get("/sso/<name>/callback")
def callback(name: str):  # type: ignore[no-untyped-def]
    provider = _provider(name)
    pending: dict[str, Any] = session.pop(PENDING, None) or {}
    if pending.get("provider") != name:
        pending = {}
    svc = services()
    try:
        identity = provider.complete(request.args, pending, _callback_url(name),
                                     svc.clock.now())
        if pending.get("purpose") == "sign":
            return _finish_signing(provider, pending, identity)
        with unit_of_work(svc.db, svc.clock, Actor.system(f"sso:{name}"), _context()) as uow:
            user_id = sso.sign_in(uow, provider.config, identity)
            uow.commit()
    except SsoRefused as exc:
        current_app.logger.warning("single sign-on through %s refused: %s", name, exc.message)
        flash(exc.message, "error")
        if pending.get("purpose") == "sign":
            return redirect(url_for("signing.ceremony", request_id=pending["request_id"]))
        return redirect(url_for("security.login"))
    datastore = current_app.extensions["security"].datastore
    user = datastore.find_user(id=user_id)
    login_user(user, authn_via=["oidc"])
    session[SIGNED_IN] = {"provider": name, "subject": identity.subject,
                          "hint": identity.session_hint}
    return redirect(pending.get("next") or "/")


# ---- signing: re-authenticate at the provider ----------------------------------------------


@bp.post("/signatures/requests/<int:request_id>/sign/sso")
@auth_required("session")
def sign(request_id: int):  # type: ignore[no-untyped-def]
    access = current_access()
    req = workflow.visible_request(db_session(), access, request_id)  # NotFound: strangers
    doc = db_session().get(Document, req.document_id)
    assert doc is not None
    access.require(Permission.SIGN, doc.study_id, doc.site_id)
    link = sso.identity_of(db_session(), access.user_id, _configs())
    if link is None:
        raise ValidationError("You do not sign in through an identity provider; sign with "
                              "your password.")
    if request.form.get("confirm") != "yes":
        flash("Tick the box to confirm the meaning of your signature.", "error")
        return redirect(url_for("signing.ceremony", request_id=request_id))
    provider = _provider(link.provider)
    url, pending = provider.begin(_callback_url(link.provider), reauthenticate=True)
    session[PENDING] = {**pending, "provider": link.provider, "purpose": "sign",
                        "request_id": request_id, "user_id": access.user_id,
                        "subject": link.subject,
                        "started_at": services().clock.now().isoformat()}
    return redirect(url)


def _finish_signing(provider: Provider, pending: dict[str, Any], identity: Any):  # type: ignore[no-untyped-def]
    from datetime import datetime

    from etmf.signing.service import ReauthenticationFailed

    access = current_access()
    request_id = int(pending["request_id"])
    if access.user_id != pending.get("user_id"):
        raise ReauthenticationFailed("You are no longer signed in as the person who started "
                                     "this signature. Nothing was signed.")
    svc = services()
    now = svc.clock.now()
    try:
        proof = sso.check_reauthentication(
            provider.config, identity, subject=str(pending["subject"]),
            started_at=datetime.fromisoformat(pending["started_at"]), now=now)
    except SsoRefused as exc:
        with unit_of_work(svc.db, svc.clock, access.actor, _context()) as uow:
            uow.emit("user", access.user_id, "user.sso_refused", {
                "provider": provider.config.name, "subject": identity.subject,
                "auth_time": identity.auth_time.isoformat() if identity.auth_time else None,
                "request_id": request_id, "reason": exc.message})
            uow.commit()
        raise
    with unit_of_work(svc.db, svc.clock, access.actor, _context()) as uow:
        uow.emit("user", access.user_id, "user.sso_reauthenticated", {
            "provider": proof.provider, "subject": proof.subject,
            "auth_time": proof.auth_time.isoformat(), "request_id": request_id})
        uow.commit()
    from etmf.web.signing import _link

    try:
        result = workflow.sign(svc, access, _context(), request_id, password=None, totp=None,
                               link=_link, external=proof)
    except EtmfError as exc:
        flash(exc.message, "error")
        return redirect(url_for("signing.ceremony", request_id=request_id))
    flash(f"You signed this document ({result.meaning}) at "
          f"{result.signed_at:%Y-%m-%d %H:%M:%S} UTC, {result.level}, after re-entering your "
          f"password at {provider.config.label} "
          f"({proof.auth_time:%Y-%m-%d %H:%M:%S} UTC). It is now version "
          f"{result.version_number}.", "success")
    return redirect(url_for("documents.detail", document_id=result.document_id))


# ---- local passwords off for a domain; sign-out of the provider too -----------------------


@bp.before_app_request
def _sso_guards():  # type: ignore[no-untyped-def]
    if request.method != "POST" or request.endpoint not in ("security.login",
                                                            "security.logout"):
        return None
    if request.endpoint == "security.login":
        email = (request.form.get("email") or "").strip().lower()
        domain = email.rsplit("@", 1)[-1] if "@" in email else ""
        for config in _configs().values():
            if not config.local_passwords and domain in config.allowed_domains:
                flash(f"Accounts at {domain} sign in with {config.label}, not with a "
                      "password here.", "error")
                return redirect(url_for("security.login"))
        return None
    signed_in = session.get(SIGNED_IN)
    if not signed_in or signed_in.get("provider") not in registry():
        return None
    csrf.protect()
    provider = _provider(signed_in["provider"])
    g.etmf_logout_cause = f"signed out (and of {provider.config.label})"
    logout_user()
    session.pop(SIGNED_IN, None)
    try:
        target = provider.logout_url(signed_in.get("hint", ""),
                                     url_for("security.login", _external=True))
    except SsoRefused:
        target = None
    return redirect(target or url_for("security.login"))
