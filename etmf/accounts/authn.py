"""Sign-in rules Flask-Security-Too does not have: lockout, inspector windows, TOTP by role.

Flask-Security-Too calls hooks on the user model (``track_failed_authn``, ``is_locked``,
``check_tf_required``); :class:`~etmf.accounts.models.User` forwards them here.

What a person is told (ACC-7: a sign-in error must not reveal whether an account exists):

* wrong password, unknown e-mail, deactivated account: the same generic sentence;
* the right password for a *locked* account: that it is locked and who can unlock it;
* the right password of an inspector outside the access window: when access is valid.

Only someone who knows the password learns the account exists, and they know it anyway.
Failed sign-ins of unknown accounts are written to the log (there is no user stream to put
an event on); the attempted identity is logged as a short hash, since people often type a
password into the e-mail field.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from flask import request
from flask_security.forms import LoginForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.accounts.access import ANONYMOUS, Access, Grant
from etmf.accounts.models import InspectorGrant, User
from etmf.audit.store import Actor, Context, unit_of_work
from etmf.mail import Mail

log = logging.getLogger("etmf.security")


def _services():  # type: ignore[no-untyped-def]
    from etmf.bootstrap import services

    return services()


def _context() -> Context:
    try:
        from flask import g

        return Context(request_id=g.get("request_id"), client_addr=request.remote_addr)
    except RuntimeError:
        return Context()


def auth_session() -> Session:
    """The request's session for the access checks: Flask-Security's, which already holds
    the signed-in user, so the checks cost no second connection. Closed at teardown.

    Not the view's own read session: starting that one early would, on SQLite, pin its
    snapshot before the view's writes and make the view read stale rows after them.
    """
    from flask import current_app

    return current_app.extensions["etmf_fs_session"]()  # type: ignore[no-any-return]


def fmt_utc(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC")


# ---- lockout (ACC-5) ---------------------------------------------------------------------


def on_failed_authn(user: User, auth_type: str, tfa: bool) -> None:
    """Count a failed password or second factor; lock at the limit and tell admins."""
    from etmf.accounts.services import record_failed_login

    svc = _services()
    attempts = svc.settings.lockout_attempts
    with unit_of_work(svc.db, svc.clock, Actor.system("anonymous"), _context()) as uow:
        locks = record_failed_login(uow, user, attempts)
        if locks:
            uow.after_commit.append(lambda: notify_admins_of_lock(user.id))
        uow.commit()
    log.warning("failed sign-in (%s%s) for user %s%s", auth_type,
                ", second factor" if tfa else "", user.id, "; account locked" if locks else "")


def notify_admins_of_lock(user_id: int) -> None:
    svc = _services()
    with svc.db.read_session() as session:
        user = session.get(User, user_id)
        assert user is not None
        admins = admin_emails(session)
        if not admins:
            log.error("account %s locked but there is no active administrator to tell", user_id)
            return
        svc.mailer.send(Mail(
            to=tuple(admins),
            subject=f"eTMF: account of {user.full_name} locked",
            body=(f"The account of {user.full_name} <{user.email}> was locked at "
                  f"{fmt_utc(svc.clock.now())} after {user.failed_logins} failed sign-in "
                  "attempts in a row.\n\nIf the attempts were theirs, unlock the account on "
                  f"{svc.settings.server_name_for_mail}/admin/locked and record why. If not, "
                  "someone may be guessing the password: keep it locked and investigate.\n"),
        ))


def admin_emails(session: Session) -> list[str]:
    users = session.scalars(select(User).where(User.active.is_(True)).order_by(User.id)).all()
    return [u.email for u in users if u.is_admin]


LOCKED_MESSAGE = ("This account is locked after too many failed sign-in attempts. "
                  "An administrator has been told; ask them to unlock it.")


def sign_in_refusal(user: User, session: Session | None = None) -> str | None:
    """Why this (correctly authenticated) user may not be signed in now, or None.

    ``session``: a read session the caller already has open (the API token check passes
    its own, saving a connection per call); otherwise a short one is opened here.
    """
    if user.locked_at is not None:
        return LOCKED_MESSAGE
    svc = _services()
    if session is not None:
        return inspection_window_refusal(session, user, svc.clock.now())
    with svc.db.read_session() as own:
        return inspection_window_refusal(own, user, svc.clock.now())


def inspection_window_refusal(session: Session, user: User, now: datetime) -> str | None:
    """For an inspector account (inspector grants, no other role): outside every window,
    say when access is valid. None for everyone else, and for inspectors inside a window."""
    inspector, grants = inspector_state(user)
    if not inspector or user.memberships:
        return None  # an inspector membership (no window) is read-only but not time-boxed
    grants = [g for g in grants if g.revoked_at is None]
    if any(g.is_active(now) for g in grants):
        return None
    from etmf.studies.models import Study

    def label(g: InspectorGrant) -> str:
        study = session.get(Study, g.study_id)
        return study.protocol_number if study else f"study {g.study_id}"

    upcoming = sorted((g for g in grants if g.starts_at > now), key=lambda g: g.starts_at)
    if upcoming:
        g = upcoming[0]
        return (f"Your inspection access to {label(g)} is valid from {fmt_utc(g.starts_at)} "
                f"to {fmt_utc(g.ends_at)}; you cannot sign in before then.")
    past = sorted(grants, key=lambda g: g.ends_at)
    if past:
        g = past[-1]
        return (f"Your inspection access to {label(g)} was valid from {fmt_utc(g.starts_at)} "
                f"to {fmt_utc(g.ends_at)} and has ended. Ask the sponsor's administrator "
                "for a new access window.")
    return "Your inspection access has been withdrawn. Ask the sponsor's administrator."


def inspector_state(user: User) -> tuple[bool, list[InspectorGrant]]:
    """(is an inspector account, all its inspector grants).

    An inspector account has inspector grants (or the inspector role) and no other role:
    it is read-only and can sign in only inside a window. The grants come with the user
    (``User.inspector_grants``: joined by the per-request lookup, else loaded on first use).
    """
    grants = list(user.inspector_grants)
    roles = {m.role for m in user.memberships}
    inspector = not user.is_admin and not (roles - {"inspector"}) and bool(roles or grants)
    return inspector, grants


def is_inspector_account(session: Session, user_id: int) -> bool:
    user = session.get(User, user_id)
    return user is not None and inspector_state(user)[0]


# ---- second factor (ACC-6) -----------------------------------------------------------------


def second_factor_required(user: User) -> bool:
    settings = _services().settings
    if not settings.require_totp:
        return False
    required = set(settings.totp_required_roles)
    if user.is_admin and "admin" in required:
        return True
    return any(m.role in required for m in user.memberships)


# ---- the sign-in form --------------------------------------------------------------------


class EtmfLoginForm(LoginForm):
    """Flask-Security-Too's form, with our refusals shown and remember-me switched off."""

    def validate(self, **kwargs: Any) -> bool:
        ok = super().validate(**kwargs)
        if "remember" in self:
            self.remember.data = False  # remember-me is off: sessions end on inactivity
        if ok:
            return True
        if self.user is None and self.email.data:
            ident = str(self.email.data).strip().lower().encode("utf-8")
            log.warning("failed sign-in for an unknown account (identity hash %s) from %s",
                        hashlib.sha256(ident).hexdigest()[:12], request.remote_addr)
        elif self.user is not None and self.user_authenticated and self.user.is_active:
            reason = sign_in_refusal(self.user)  # type: ignore[arg-type]
            if reason:
                self.form_errors.append(reason)
        return False


# ---- the request's access (grants from memberships and inspector windows) ----------------


def load_access(session: Session, user: User, now: datetime) -> Access:
    """Memberships plus the inspector grants whose window contains ``now``."""
    grants = [Grant(m.study_id, m.site_id, m.role) for m in user.memberships]
    inspector, inspections = inspector_state(user)
    for g in inspections:
        if not g.is_active(now):
            continue
        zones = g.zone_set() or None
        for site_id in sorted(g.site_id_set()) or [None]:
            grants.append(Grant(g.study_id, site_id, "inspector", zones))
    return Access(user_id=user.id, name=user.full_name, is_admin=user.is_admin,
                  grants=tuple(grants), read_only=inspector)


__all__ = ["ANONYMOUS", "EtmfLoginForm", "load_access", "sign_in_refusal"]
