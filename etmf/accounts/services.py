"""Account commands. Each runs in one unit of work and records its events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from flask_security.utils import hash_password
from sqlalchemy import func, select

from etmf.accounts.models import Membership, User
from etmf.accounts.roles import ROLES
from etmf.audit.store import UnitOfWork
from etmf.errors import Conflict, NotFound, ValidationError
from etmf.studies.models import Site, Study


@dataclass(frozen=True)
class NewUser:
    email: str
    full_name: str
    password: str
    global_roles: tuple[str, ...] = ()


def normalise_email(email: str) -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValidationError(f"{email!r} is not a valid e-mail address: {exc}.") from None


def create_user(uow: UnitOfWork, cmd: NewUser) -> User:
    """Create an account. E-mail addresses are never reused, not even a deactivated one's."""
    email = normalise_email(cmd.email)
    if not cmd.full_name.strip():
        raise ValidationError("The full name is required: it is printed on signatures.")
    taken = uow.session.scalar(select(User.id).where(func.lower(User.email) == email))
    if taken is not None:
        raise Conflict(f"An account with the e-mail address {email} exists or existed.")
    for name in cmd.global_roles:
        if name != "admin":
            raise ValidationError(f"{name!r} is not a global role; only 'admin' is.")
    user_id = uow.allocate_id(User)
    uow.emit(
        "user",
        user_id,
        "user.created",
        {"email": email, "full_name": cmd.full_name.strip(),
         "global_roles": sorted(cmd.global_roles)},
        expected_version=0,
    )
    user = uow.session.get(User, user_id)
    assert user is not None
    user.password = hash_password(cmd.password)
    user.fs_uniquifier = uuid.uuid4().hex
    return user


def grant_membership(
    uow: UnitOfWork, *, user_id: int, study_id: int, role: str, site_id: int | None = None,
    granted_via: str | None = None,
) -> int:
    if role not in ROLES or not ROLES[role].study_scoped:
        raise ValidationError(f"{role!r} is not a study role.")
    if uow.session.get(User, user_id) is None:
        raise NotFound("There is no such user.")
    if uow.session.get(Study, study_id) is None:
        raise NotFound("There is no such study.")
    if site_id is not None:
        site = uow.session.get(Site, site_id)
        if site is None or site.study_id != study_id:
            raise NotFound("There is no such site in this study.")
    membership_id = uow.allocate_id(Membership)
    data: dict[str, object] = {"user_id": user_id, "study_id": study_id, "site_id": site_id,
                               "role": role}
    if granted_via is not None:
        data["granted_via"] = granted_via
    uow.emit(
        "membership",
        membership_id,
        "membership.granted",
        data,
        expected_version=0,
        study_id=study_id,
    )
    return membership_id


def record_login(uow: UnitOfWork, user: User) -> None:
    uow.emit("user", user.id, "user.login", {"email": user.email})


def record_logout(uow: UnitOfWork, user: User) -> None:
    uow.emit("user", user.id, "user.logout", {"email": user.email})


def record_failed_login(uow: UnitOfWork, user: User, lockout_attempts: int) -> bool:
    """Count a failed login; returns True when this failure locks the account."""
    user = _get_user(uow, user.id)  # the row as of now, under the write lock
    failures = (user.failed_logins or 0) + 1
    locks = failures >= lockout_attempts and user.locked_at is None
    uow.emit(
        "user",
        user.id,
        "user.login_failed",
        {"email": user.email, "failed_logins": failures, "locked": locks},
    )
    return locks


# ---- administration (every change is an event; AUD-1) --------------------------------------


def _get_user(uow: UnitOfWork, user_id: int) -> User:
    user = uow.session.get(User, user_id)
    if user is None:
        raise NotFound("There is no such user.")
    return user


def unlock_user(uow: UnitOfWork, user_id: int, *, reason: str | None,
                expected_version: int | None = None) -> None:
    """Unlock an account locked by failed sign-ins; an audited administrator action."""
    user = _get_user(uow, user_id)
    if user.locked_at is None:
        raise ValidationError(f"The account of {user.full_name} is not locked.")
    uow.emit("user", user.id, "user.unlocked",
             {"email": user.email, "failed_logins": [user.failed_logins, 0]},
             expected_version=expected_version, reason=reason, reason_required=True)


def deactivate_user(uow: UnitOfWork, user_id: int, *, reason: str | None,
                    expected_version: int | None = None) -> None:
    """Deactivate (never delete) an account: it can no longer sign in or use API tokens."""
    user = _get_user(uow, user_id)
    if uow.actor.id == user.id:
        raise ValidationError("You cannot deactivate your own account.")
    if not user.active:
        raise ValidationError(f"The account of {user.full_name} is already deactivated.")
    uow.emit("user", user.id, "user.deactivated", {"email": user.email, "active": [True, False]},
             expected_version=expected_version, reason=reason, reason_required=True)


def reactivate_user(uow: UnitOfWork, user_id: int, *, reason: str | None,
                    expected_version: int | None = None) -> None:
    user = _get_user(uow, user_id)
    if user.active:
        raise ValidationError(f"The account of {user.full_name} is active.")
    uow.emit("user", user.id, "user.reactivated", {"email": user.email, "active": [False, True]},
             expected_version=expected_version, reason=reason, reason_required=True)


def set_global_roles(uow: UnitOfWork, user_id: int, roles: tuple[str, ...], *,
                     reason: str | None, expected_version: int | None = None) -> None:
    """Replace a user's global roles (only "admin" exists)."""
    user = _get_user(uow, user_id)
    for name in roles:
        if name != "admin":
            raise ValidationError(f"{name!r} is not a global role; only 'admin' is.")
    old = sorted(r.name for r in user.roles)
    new = sorted(set(roles))
    if old == new:
        raise ValidationError("Nothing changed: the user already has these global roles.")
    if uow.actor.id == user.id and "admin" in old and "admin" not in new:
        raise ValidationError("You cannot remove your own administrator role.")
    uow.emit("user", user.id, "user.global_roles_changed",
             {"email": user.email, "roles": [old, new]},
             expected_version=expected_version, reason=reason, reason_required=True)


def revoke_membership(uow: UnitOfWork, membership_id: int, *, reason: str | None) -> None:
    membership = uow.session.get(Membership, membership_id)
    if membership is None or membership.revoked_at is not None:
        raise NotFound("There is no such current study role.")
    uow.emit("membership", membership.id, "membership.revoked",
             {"user_id": membership.user_id, "study_id": membership.study_id,
              "site_id": membership.site_id, "role": membership.role},
             study_id=membership.study_id, reason=reason, reason_required=True)


# ---- inspector grants (ACC-3) ----------------------------------------------------------------


@dataclass(frozen=True)
class NewInspection:
    user_id: int
    study_id: int
    starts_at: datetime
    ends_at: datetime
    zones: tuple[str, ...] = ()
    site_ids: tuple[int, ...] = ()
    reason: str | None = None


def grant_inspection(uow: UnitOfWork, cmd: NewInspection) -> int:
    """Give an inspector read-only access to one study for a stated window (UTC)."""
    from etmf.accounts.models import InspectorGrant
    from etmf.clock import utc_iso

    user = _get_user(uow, cmd.user_id)
    if not user.active:
        raise ValidationError(f"The account of {user.full_name} is deactivated.")
    if user.is_admin or any(m.role != "inspector" for m in user.memberships):
        raise ValidationError(
            f"{user.full_name} has other roles; inspector access is for inspector accounts "
            "only, so that an inspector can change nothing.")
    if uow.session.get(Study, cmd.study_id) is None:
        raise NotFound("There is no such study.")
    for at in (cmd.starts_at, cmd.ends_at):
        if at.tzinfo is None:
            raise ValidationError("Give the start and end of the window in UTC.")
    if cmd.ends_at <= cmd.starts_at:
        raise ValidationError("The end of the access window must be after its start.")
    if cmd.ends_at <= uow.now:
        raise ValidationError("The access window is already over; choose an end in the future.")
    zones = sorted(set(cmd.zones))
    for zone in zones:
        if not (len(zone) == 2 and zone.isdigit()):
            raise ValidationError(f"{zone!r} is not a TMF zone number (01 … 11).")
    site_ids = sorted(set(cmd.site_ids))
    for site_id in site_ids:
        site = uow.session.get(Site, site_id)
        if site is None or site.study_id != cmd.study_id:
            raise NotFound("There is no such site in this study.")
    grant_id = uow.allocate_id(InspectorGrant)
    uow.emit("inspector_grant", grant_id, "inspection.granted",
             {"user_id": user.id, "email": user.email, "study_id": cmd.study_id,
              "starts_at": utc_iso(cmd.starts_at), "ends_at": utc_iso(cmd.ends_at),
              "zones": zones, "site_ids": site_ids},
             expected_version=0, study_id=cmd.study_id, reason=cmd.reason)
    return grant_id


def revoke_inspection(uow: UnitOfWork, grant_id: int, *, reason: str | None) -> None:
    from etmf.accounts.models import InspectorGrant

    grant = uow.session.get(InspectorGrant, grant_id)
    if grant is None or grant.revoked_at is not None:
        raise NotFound("There is no such current inspector grant.")
    uow.emit("inspector_grant", grant.id, "inspection.revoked",
             {"user_id": grant.user_id, "study_id": grant.study_id},
             study_id=grant.study_id, reason=reason, reason_required=True)


# ---- API tokens (ACC-8) -----------------------------------------------------------------------

TOKEN_PREFIX = "etmf_"
MAX_TOKEN_DAYS = 366


def hash_token(token: str) -> str:
    """Tokens are 256-bit random: a plain SHA-256 is enough (no guessing to slow down)."""
    import hashlib

    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_api_token(uow: UnitOfWork, user_id: int, name: str, days: int) -> str:
    """Create a token for ``user_id``; returns the token, which is never shown again."""
    import secrets
    from datetime import timedelta

    from etmf.accounts.models import ApiToken
    from etmf.clock import utc_iso

    name = (name or "").strip()
    if not name:
        raise ValidationError("Give the token a name, so you can tell it apart later.")
    if len(name) > 100:
        raise ValidationError("The token name is too long (100 characters at most).")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_TOKEN_DAYS:
        raise ValidationError(f"A token is valid for 1 to {MAX_TOKEN_DAYS} days.")
    user = _get_user(uow, user_id)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = uow.allocate_id(ApiToken)
    uow.emit("api_token", token_id, "api_token.created",
             {"user_id": user.id, "name": name, "prefix": token[:12],
              "expires_at": utc_iso(uow.now + timedelta(days=days))},
             expected_version=0)
    row = uow.session.get(ApiToken, token_id)
    assert row is not None
    row.token_hash = hash_token(token)
    return token


def revoke_api_token(uow: UnitOfWork, user_id: int, token_id: int) -> None:
    from etmf.accounts.models import ApiToken

    row = uow.session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id or row.revoked_at is not None:
        raise NotFound("There is no such active token.")
    uow.emit("api_token", row.id, "api_token.revoked", {"user_id": user_id, "name": row.name})
