"""Account commands. Each runs in one unit of work and records its events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

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
    uow: UnitOfWork, *, user_id: int, study_id: int, role: str, site_id: int | None = None
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
    uow.emit(
        "membership",
        membership_id,
        "membership.granted",
        {"user_id": user_id, "study_id": study_id, "site_id": site_id, "role": role},
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
    failures = (user.failed_logins or 0) + 1
    locks = failures >= lockout_attempts and user.locked_at is None
    uow.emit(
        "user",
        user.id,
        "user.login_failed",
        {"email": user.email, "failed_logins": failures, "locked": locks},
    )
    return locks
