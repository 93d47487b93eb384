"""Accounts, global roles (for Flask-Security-Too) and study memberships."""

from __future__ import annotations

from datetime import datetime

from flask_security.core import RoleMixin, UserMixin
from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from etmf.db import Base, UTCDateTime

roles_users = Table(
    "roles_users",
    Base.metadata,
    Column("user_id", ForeignKey("users.id"), primary_key=True),
    Column("role_id", ForeignKey("roles.id"), primary_key=True),
)

#: Columns that hold credentials. They are never written to the audit log (an event says
#: that a password changed, not what it became) and so are not rebuilt by a replay.
CREDENTIAL_COLUMNS = frozenset(
    {"password", "fs_uniquifier", "tf_totp_secret", "tf_primary_method", "tf_recovery_codes"}
)


class GlobalRole(Base, RoleMixin):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str | None] = mapped_column(String(255))
    permissions: Mapped[str | None] = mapped_column(Text)


class User(Base, UserMixin):
    """An account. Deactivated, never deleted; ids, user names and e-mails never reused."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    #: The printed name shown in signatures and audit records.
    full_name: Mapped[str] = mapped_column(String(200))
    password: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    fs_uniquifier: Mapped[str] = mapped_column(String(64), unique=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    tf_primary_method: Mapped[str | None] = mapped_column(String(64))
    tf_totp_secret: Mapped[str | None] = mapped_column(String(255))
    tf_recovery_codes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Stream version of the user's audit stream (optimistic concurrency).
    version: Mapped[int] = mapped_column(Integer, default=0)

    roles: Mapped[list[GlobalRole]] = relationship(secondary=roles_users, lazy="selectin")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", lazy="selectin",
        primaryjoin="and_(User.id == Membership.user_id, Membership.revoked_at.is_(None))",
        viewonly=True,
    )

    @property
    def is_admin(self) -> bool:
        return any(r.name == "admin" for r in self.roles)


class Membership(Base):
    """A user's role in one study, optionally limited to one site."""

    __tablename__ = "memberships"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"))
    role: Mapped[str] = mapped_column(String(40))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="memberships", viewonly=True)
