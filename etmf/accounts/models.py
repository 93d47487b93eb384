"""Accounts, global roles (for Flask-Security-Too) and study memberships."""

from __future__ import annotations

from datetime import datetime

from flask_security.core import RoleMixin, UserMixin
from sqlalchemy import Boolean, CheckConstraint, Column, ForeignKey, Integer, String, Table, Text
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
    {"password", "fs_uniquifier", "tf_totp_secret", "tf_primary_method", "tf_recovery_codes",
     # API tokens: the event records that a token was created (id, name, prefix, expiry),
     # never the token or its hash.
     "token_hash"}
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
    #: The last authenticator step consumed (sign-in or signature): a code works once.
    tf_totp_last_step: Mapped[int | None] = mapped_column(Integer)
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
    #: Every inspector grant, revoked and expired ones too: the sign-in refusal names the
    #: window that ended. Joined to the user's row at each request (``find_user``), else
    #: loaded on first use.
    inspector_grants: Mapped[list[InspectorGrant]] = relationship(
        order_by="InspectorGrant.id", viewonly=True)

    @property
    def is_admin(self) -> bool:
        return any(r.name == "admin" for r in self.roles)

    # ---- Flask-Security-Too hooks (see etmf.accounts.authn) -----------------------------
    def track_failed_authn(self, auth_type: str, tfa: bool = False) -> None:
        """A credential of this account failed: count it, lock at the limit, tell admins."""
        from etmf.accounts.authn import on_failed_authn

        on_failed_authn(self, auth_type, tfa)

    def is_locked(self, form_error: list[str] | None = None) -> bool:
        """Locked accounts and inspectors outside their window cannot sign in.

        Called by Flask-Security-Too only after the password was verified; the reason is
        shown by :class:`etmf.accounts.authn.EtmfLoginForm`.
        """
        from etmf.accounts.authn import sign_in_refusal

        return sign_in_refusal(self) is not None

    def check_tf_required(
        self, tf_setup_methods: list[tuple[str, str]], tf_fresh: bool
    ) -> tuple[bool, list[tuple[str, str]]]:
        from etmf.accounts.authn import second_factor_required

        required = second_factor_required(self) or len(tf_setup_methods) > 0
        return required, tf_setup_methods

    def check_tf_required_setup(self) -> bool:
        from etmf.accounts.authn import second_factor_required

        return second_factor_required(self)


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
    #: None when an administrator granted the role; "sso:<provider>" when a group claim of
    #: that identity provider did (such a role is revoked when the group goes away).
    granted_via: Mapped[str | None] = mapped_column(String(80))

    user: Mapped[User] = relationship(back_populates="memberships", viewonly=True)


class InspectorGrant(Base):
    """Time-boxed, read-only access of one inspector to one study (ACC-3).

    ``zones`` and ``site_ids`` are comma-separated lists; empty means the whole study.
    """

    __tablename__ = "inspector_grants"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="window"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    zones: Mapped[str] = mapped_column(String(200), default="")
    site_ids: Mapped[str] = mapped_column(String(500), default="")
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    granted_by: Mapped[int | None] = mapped_column(Integer)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def zone_set(self) -> frozenset[str]:
        return frozenset(z for z in self.zones.split(",") if z)

    def site_id_set(self) -> frozenset[int]:
        return frozenset(int(s) for s in self.site_ids.split(",") if s)

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.starts_at <= now < self.ends_at


class ApiToken(Base):
    """A personal API token. Only its SHA-256 is stored; the token is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    #: The first characters of the token, shown in lists so a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def is_valid(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at
