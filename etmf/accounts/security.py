"""Flask-Security-Too wiring: sign-in, sign-out, password hashing and policy, CSRF.

Flask-Security-Too writes to the user table itself (for example when a password hash is
upgraded or a second factor is enrolled). Our datastore routes those writes through a unit
of work so each one leaves an audit event, like every other change.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any

from flask import Flask, g, request
from flask_login import current_user, user_logged_out
from flask_security import Security, SQLAlchemySessionUserDatastore
from flask_security.signals import user_authenticated
from flask_wtf import CSRFProtect
from sqlalchemy import func, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import joinedload, scoped_session

from etmf.accounts.access import ANONYMOUS, Access
from etmf.accounts.models import CREDENTIAL_COLUMNS, GlobalRole, User
from etmf.accounts.totp import OnceOnlyTotp, consumed_step
from etmf.audit.store import Actor, Context

log = logging.getLogger("etmf.security")

csrf = CSRFProtect()


class AuditedUserDatastore(SQLAlchemySessionUserDatastore):
    """Every write Flask-Security-Too makes is committed with an audit event, and the user
    it looks up comes with its memberships.

    The changes are replayed in a fresh write transaction rather than committed from
    Flask-Security-Too's session: that session began reading earlier in the request, and
    on SQLite a transaction whose snapshot predates another commit (our sign-in event, for
    one) can no longer write.
    """

    def find_user(self, case_insensitive: bool = False, **kwargs: Any) -> User | None:
        """Flask-Security-Too's lookup (one attribute), with roles, memberships and inspector
        grants joined.

        The signed-in user is looked up at every request, and every access check reads its
        memberships and grants: one query rather than the user and then each collection.
        """
        stmt = select(User).options(joinedload(User.roles), joinedload(User.memberships),
                                    joinedload(User.inspector_grants))
        for attr, value in kwargs.items():
            column = getattr(User, attr)
            stmt = stmt.where(func.lower(column) == func.lower(value) if case_insensitive
                              else column == value)
        return self.db.session.execute(stmt).unique().scalars().first()

    def commit(self) -> None:
        from etmf.audit.store import unit_of_work
        from etmf.bootstrap import services

        session = self.db.session
        svc = services()
        changed: list[tuple[int, dict[str, Any]]] = []
        for obj in list(session.dirty):
            if isinstance(obj, User):
                state = sa_inspect(obj)
                values = {attr.key: attr.value for attr in state.attrs
                          if attr.history.has_changes()}
                if values:
                    changed.append((obj.id, values))
        session.rollback()  # end the (possibly stale) transaction; objects reload later
        if not changed:
            return
        with unit_of_work(svc.db, svc.clock, _actor(), _context()) as uow:
            for user_id, values in changed:
                row = uow.session.get(User, user_id)
                assert row is not None
                for key, value in values.items():
                    setattr(row, key, value)
                fields = sorted(values)
                kind = ("user.password_changed" if "password" in fields
                        else "user.second_factor_changed")
                uow.emit("user", user_id, kind, {"fields": fields})
            uow.commit()


def _actor() -> Actor:
    if getattr(current_user, "is_authenticated", False):
        return Actor(id=current_user.id, name=current_user.full_name)
    return Actor.system("anonymous")


def _context() -> Context:
    try:
        return Context(request_id=g.get("request_id"), client_addr=request.remote_addr)
    except RuntimeError:
        return Context()


def init_security(app: Flask, svc: Any) -> None:
    settings = svc.settings
    session = scoped_session(svc.db._read, scopefunc=_scope)  # noqa: SLF001
    app.extensions["etmf_fs_session"] = session

    @app.teardown_appcontext
    def _remove(_exc: BaseException | None) -> None:
        session.remove()

    app.config.update(
        SECURITY_PASSWORD_SALT=settings.password_salt,
        SECURITY_PASSWORD_HASH="argon2",
        # Argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane): about 50 ms a
        # check here. passlib's default (64 MiB, 3 passes, 4 lanes) took 0.6 s on two busy
        # cores, at every sign-in and every signature. Older hashes keep their own cost.
        SECURITY_PASSWORD_HASH_PASSLIB_OPTIONS={"argon2__memory_cost": 19456,
                                                "argon2__time_cost": 2,
                                                "argon2__parallelism": 1},
        SECURITY_PASSWORD_LENGTH_MIN=settings.password_min_length,
        SECURITY_PASSWORD_COMPLEXITY_CHECKER="zxcvbn",
        SECURITY_PASSWORD_CHECK_BREACHED=False,
        SECURITY_USER_IDENTITY_ATTRIBUTES=[
            {"email": {"mapper": _lower, "case_insensitive": True}}
        ],
        SECURITY_USERNAME_ENABLE=False,
        SECURITY_RETURN_GENERIC_RESPONSES=True,
        SECURITY_TRACKABLE=False,
        SECURITY_REGISTERABLE=False,
        SECURITY_RECOVERABLE=False,
        SECURITY_CHANGEABLE=True,
        SECURITY_CONFIRMABLE=False,
        SECURITY_DEFAULT_REMEMBER_ME=False,
        SECURITY_LOGOUT_METHODS=["POST"],
        SECURITY_POST_LOGIN_VIEW="/",
        SECURITY_POST_LOGOUT_VIEW="/login",
        SECURITY_LOGIN_USER_TEMPLATE="security/login_user.html",
        SECURITY_CHANGE_PASSWORD_TEMPLATE="security/change_password.html",
        SECURITY_URL_PREFIX="",
        SECURITY_SEND_REGISTER_EMAIL=False,
        SECURITY_SEND_PASSWORD_CHANGE_EMAIL=False,
        SECURITY_MSG_INVALID_PASSWORD=("Wrong e-mail address or password.", "error"),
        SECURITY_MSG_USER_DOES_NOT_EXIST=("Wrong e-mail address or password.", "error"),
        SECURITY_MSG_DISABLED_ACCOUNT=("Wrong e-mail address or password.", "error"),
        SECURITY_MSG_GENERIC_AUTHN_FAILED=("Wrong e-mail address or password.", "error"),
        SECURITY_MSG_LOGIN=("Please sign in to see this page.", "info"),
        # Second factor: an authenticator app (TOTP), required for the roles in
        # settings.totp_required_roles when settings.require_totp (see authn.py).
        SECURITY_TWO_FACTOR=True,
        SECURITY_TWO_FACTOR_ENABLED_METHODS=["authenticator"],
        SECURITY_TWO_FACTOR_ALWAYS_VALIDATE=True,
        SECURITY_TWO_FACTOR_RESCUE_EMAIL=False,
        SECURITY_TWO_FACTOR_SETUP_TEMPLATE="security/two_factor_setup.html",
        SECURITY_TWO_FACTOR_VERIFY_CODE_TEMPLATE="security/two_factor_verify_code.html",
        SECURITY_TOTP_ISSUER="eTMF",
        SECURITY_TOTP_SECRETS={"1": hashlib.sha256(
            ("etmf-totp:" + settings.secret_key).encode("utf-8")).hexdigest()},
        ETMF_LOCKOUT_ATTEMPTS=settings.lockout_attempts,
        ETMF_SESSION_TIMEOUT_MINUTES=settings.session_timeout_minutes,
        SECURITY_MSG_TWO_FACTOR_INVALID_TOKEN=("That code is not valid. Enter the current "
                                               "6-digit code from your app.", "error"),
    )
    from etmf.accounts import guards
    from etmf.accounts.authn import EtmfLoginForm

    # Before CSRF: an inspector's write is refused as read-only (403) whatever it carries.
    guards.init_app(app)
    csrf.init_app(app)
    datastore = AuditedUserDatastore(session, User, GlobalRole)
    Security(app, datastore, register_blueprint=True, login_form=EtmfLoginForm,
             totp_cls=OnceOnlyTotp)

    @app.before_request
    def _permanent_session() -> None:
        from flask import session as flask_session

        if "Authorization" in request.headers:
            return  # an API token call: no session, no cookie
        if not flask_session.permanent:  # setting it marks the session changed: re-sent
            flask_session.permanent = True  # the cookie's lifetime; inactivity: guards.py

    user_authenticated.connect(_on_login, app)
    user_logged_out.connect(_on_logout, app)


def _lower(value: str) -> str:
    return value.strip().lower()


def _scope() -> int:
    from flask import g as _g

    try:
        return id(_g._get_current_object())
    except RuntimeError:
        import threading

        return threading.get_ident()


def _record(user: User, event_type: str, *, rotate_uniquifier: bool = False,
            cause: str | None = None) -> None:
    from etmf.audit.store import unit_of_work
    from etmf.bootstrap import services

    svc = services()
    with unit_of_work(svc.db, svc.clock, Actor(id=user.id, name=user.full_name),
                      _context()) as uow:
        data: dict[str, Any] = {"email": user.email, **({"cause": cause} if cause else {})}
        step = consumed_step(user.id) if event_type == "user.login" else None
        if step is not None:
            data["totp_step"] = step
        uow.emit("user", user.id, event_type, data)
        if rotate_uniquifier:
            # The session cookie names the user by fs_uniquifier: a new one makes every
            # earlier cookie of this user worthless, so a copied cookie cannot be replayed.
            row = uow.session.get(User, user.id)
            assert row is not None
            row.fs_uniquifier = uuid.uuid4().hex
        uow.commit()


def _on_login(app: Flask, user: User, **_: Any) -> None:
    from etmf.accounts.guards import mark_activity

    _record(user, "user.login")
    mark_activity()


def _on_logout(app: Flask, user: User | None = None, **_: Any) -> None:
    if user is not None and getattr(user, "id", None):
        _record(user, "user.logout", rotate_uniquifier=True,
                cause=g.get("etmf_logout_cause", "signed out"))


def current_access() -> Access:
    """The signed-in user's permissions, computed once per request.

    Memberships, plus inspector grants whose window contains the server's now (ACC-3).
    """
    cached = g.get("etmf_access")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    if not getattr(current_user, "is_authenticated", False):
        access = ANONYMOUS
    else:
        from etmf.accounts.authn import auth_session, load_access
        from etmf.bootstrap import services

        access = load_access(auth_session(), current_user._get_current_object(),  # type: ignore[attr-defined]
                             services().clock.now())
    g.etmf_access = access
    return access


def password_policy_problems(password: str) -> list[str]:
    """What is wrong with a password, using the same checks as sign-up (for the CLI)."""
    from flask_security.utils import password_complexity_validator, password_length_validator

    problems = password_length_validator(password) or []
    problems += password_complexity_validator(password, True) or []
    return list(problems)


__all__ = ["CREDENTIAL_COLUMNS", "current_access", "csrf", "init_security"]
