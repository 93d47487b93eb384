"""How account events change the read tables (the only code that does)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from etmf.accounts.models import ApiToken, GlobalRole, InspectorGrant, Membership, User
from etmf.audit.store import PendingEvent, projection


def _user(session: Session, event: PendingEvent) -> User:
    user = session.get(User, int(event.stream_id))
    assert user is not None, f"event {event.type} for unknown user {event.stream_id}"
    user.version = event.stream_version
    return user


def _global_role(session: Session, name: str) -> GlobalRole:
    found = session.scalar(select(GlobalRole).where(GlobalRole.name == name))
    if found is None:
        found = GlobalRole(name=name, description=name)
        session.add(found)
    return found


@projection("user.created")
def user_created(session: Session, event: PendingEvent) -> None:
    d = event.data
    user = User(
        id=int(event.stream_id),
        email=d["email"],
        full_name=d["full_name"],
        active=True,
        # Credentials are set by the service after this event and never logged.
        fs_uniquifier=f"pending-{event.stream_id}",
        created_at=event.occurred_at,
        failed_logins=0,
        version=event.stream_version,
    )
    user.roles = [_global_role(session, name) for name in d.get("global_roles", [])]
    session.add(user)
    session.flush()


@projection("user.global_roles_changed")
def global_roles_changed(session: Session, event: PendingEvent) -> None:
    user = _user(session, event)
    user.roles = [_global_role(session, name) for name in event.data["roles"][1]]


@projection("user.deactivated")
def user_deactivated(session: Session, event: PendingEvent) -> None:
    user = _user(session, event)
    user.active = False
    user.deactivated_at = event.occurred_at


@projection("user.reactivated")
def user_reactivated(session: Session, event: PendingEvent) -> None:
    user = _user(session, event)
    user.active = True
    user.deactivated_at = None


@projection("user.password_changed", "user.logout", "user.second_factor_changed")
def credential_event(session: Session, event: PendingEvent) -> None:
    # Credentials live outside the log; the event records that it happened, by whom.
    _user(session, event)


@projection("user.login")
def user_login(session: Session, event: PendingEvent) -> None:
    user = _user(session, event)
    user.failed_logins = 0
    if "totp_step" in event.data:
        user.tf_totp_last_step = int(event.data["totp_step"])


@projection("user.totp_used")
def user_totp_used(session: Session, event: PendingEvent) -> None:
    _user(session, event).tf_totp_last_step = int(event.data["step"])


@projection("user.login_failed")
def user_login_failed(session: Session, event: PendingEvent) -> None:
    user = _user(session, event)
    user.failed_logins = int(event.data["failed_logins"])
    if event.data.get("locked"):
        user.locked_at = event.occurred_at


@projection("user.unlocked")
def user_unlocked(session: Session, event: PendingEvent) -> None:
    user = _user(session, event)
    user.failed_logins = 0
    user.locked_at = None


@projection("membership.granted")
def membership_granted(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(
        Membership(
            id=int(event.stream_id),
            user_id=d["user_id"],
            study_id=d["study_id"],
            site_id=d.get("site_id"),
            role=d["role"],
            granted_at=event.occurred_at,
            granted_via=d.get("granted_via"),
        )
    )
    session.flush()


@projection("membership.revoked")
def membership_revoked(session: Session, event: PendingEvent) -> None:
    membership = session.get(Membership, int(event.stream_id))
    assert membership is not None
    membership.revoked_at = event.occurred_at


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@projection("inspection.granted")
def inspection_granted(session: Session, event: PendingEvent) -> None:
    d = event.data
    session.add(InspectorGrant(
        id=int(event.stream_id), user_id=d["user_id"], study_id=d["study_id"],
        starts_at=_at(d["starts_at"]), ends_at=_at(d["ends_at"]),
        zones=",".join(d["zones"]), site_ids=",".join(str(s) for s in d["site_ids"]),
        granted_at=event.occurred_at, granted_by=event.actor.id,
    ))
    session.flush()


@projection("inspection.revoked")
def inspection_revoked(session: Session, event: PendingEvent) -> None:
    grant = session.get(InspectorGrant, int(event.stream_id))
    assert grant is not None
    grant.revoked_at = event.occurred_at


@projection("api_token.created")
def api_token_created(session: Session, event: PendingEvent) -> None:
    d = event.data
    # The hash is set by the service after this event and is never logged.
    session.add(ApiToken(id=int(event.stream_id), user_id=d["user_id"], name=d["name"],
                         prefix=d["prefix"], created_at=event.occurred_at,
                         expires_at=_at(d["expires_at"])))
    session.flush()


@projection("api_token.revoked")
def api_token_revoked(session: Session, event: PendingEvent) -> None:
    row = session.get(ApiToken, int(event.stream_id))
    assert row is not None
    row.revoked_at = event.occurred_at


@projection("document.viewed", "document.downloaded")
def document_accessed(session: Session, event: PendingEvent) -> None:
    # Reading changes no table: the event itself is the record (stream "document_access").
    del session, event
