"""How single sign-on events change the read tables."""

from __future__ import annotations

from sqlalchemy.orm import Session

from etmf.accounts.models import User
from etmf.audit.store import PendingEvent, projection
from etmf.sso.models import SsoIdentity


def _user(session: Session, event: PendingEvent) -> User:
    user = session.get(User, int(event.stream_id))
    assert user is not None, f"event {event.type} for unknown user {event.stream_id}"
    user.version = event.stream_version
    return user


@projection("user.sso_linked")
def sso_linked(session: Session, event: PendingEvent) -> None:
    _user(session, event)
    d = event.data
    session.add(SsoIdentity(id=int(d["identity_id"]), provider=d["provider"],
                            subject=d["subject"], user_id=int(event.stream_id),
                            linked_at=event.occurred_at))


@projection("user.sso_login", "user.sso_reauthenticated", "user.sso_refused")
def sso_recorded(session: Session, event: PendingEvent) -> None:
    # The audit record is the point: provider, subject, auth_time are in the event.
    _user(session, event)
