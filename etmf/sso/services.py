"""Single sign-on commands: sign-in (link or provision the account, map claims to study
roles) and the check of a re-authentication made for a signature. Protocol-free: they work
on an :class:`~etmf.sso.provider.Identity` that a provider already checked."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select

from etmf.accounts.models import Membership, User
from etmf.accounts.roles import ROLES
from etmf.accounts.services import NewUser, create_user, grant_membership, revoke_membership
from etmf.audit.store import UnitOfWork
from etmf.sso.config import ProviderConfig
from etmf.sso.models import SsoIdentity
from etmf.sso.provider import ExternalAuthentication, Identity, SsoRefused
from etmf.studies.models import Site, Study


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def refuse_sign_in(uow: UnitOfWork, config: ProviderConfig, identity: Identity,
                   why: str) -> None:
    """Record a refused single sign-on of a known account, then raise."""
    link = uow.session.scalar(select(SsoIdentity).where(
        SsoIdentity.provider == config.name, SsoIdentity.subject == identity.subject))
    if link is not None:
        uow.emit("user", link.user_id, "user.sso_refused", {
            "provider": config.name, "subject": identity.subject, "reason": why})
    raise SsoRefused(why)


def sign_in(uow: UnitOfWork, config: ProviderConfig, identity: Identity) -> int:
    """The account for this identity: linked before, or found by e-mail, or (with
    ``provisioning = "jit"``) created now. Study roles from the groups claim are granted.
    Returns the user id; the caller commits and signs the session in."""
    domain = identity.email.rsplit("@", 1)[-1]
    if not config.allows_email(identity.email):
        raise SsoRefused(f"Accounts for e-mail addresses at {domain} cannot be used through "
                         f"{config.label} on this server. No account was created; ask your "
                         "administrator.")
    link = uow.session.scalar(select(SsoIdentity).where(
        SsoIdentity.provider == config.name, SsoIdentity.subject == identity.subject))
    if link is not None:
        user = uow.session.get(User, link.user_id)
        assert user is not None
    else:
        user = uow.session.scalar(select(User).where(func.lower(User.email) == identity.email))
        if user is None:
            if config.provisioning != "jit":
                raise SsoRefused(f"There is no account for {identity.email} on this server. "
                                 "Ask your administrator to create one.")
            user = create_user(uow, NewUser(email=identity.email, full_name=identity.name,
                                            password=secrets.token_urlsafe(32)))
            user.password = None  # no local password: this account signs in at the provider
        elif uow.session.scalar(select(SsoIdentity.id).where(
                SsoIdentity.provider == config.name, SsoIdentity.user_id == user.id)):
            raise SsoRefused(f"The account {identity.email} is linked to another "
                             f"{config.label} identity. Ask your administrator.")
        uow.emit("user", user.id, "user.sso_linked", {
            "identity_id": uow.allocate_id(SsoIdentity), "provider": config.name,
            "subject": identity.subject, "email": identity.email})
    if not user.active:
        refuse_sign_in(uow, config, identity, "This account is deactivated.")
    if user.locked_at is not None:
        refuse_sign_in(uow, config, identity, "This account is locked; ask an administrator "
                       "to unlock it.")
    granted, revoked = apply_role_mapping(uow, config, user.id, identity.groups)
    uow.emit("user", user.id, "user.sso_login", {
        "email": user.email, "provider": config.name, "subject": identity.subject,
        "auth_time": _iso(identity.auth_time), "roles_granted": granted,
        "roles_revoked": revoked})
    return user.id


def apply_role_mapping(uow: UnitOfWork, config: ProviderConfig, user_id: int,
                       groups: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Bring the study roles that come from this provider's groups in line with the groups
    the person has now: grant what a group maps to and is not held, revoke what an earlier
    group granted and no current group maps to. Roles an administrator granted are never
    touched. Returns (granted, revoked), each as "STUDY/role[/site]"."""
    via = f"sso:{config.name}"
    wanted: dict[tuple[int, str, int | None], str] = {}
    for mapping in config.role_mapping:
        if mapping.group not in groups:
            continue
        if mapping.role not in ROLES or not ROLES[mapping.role].study_scoped:
            continue
        study = uow.session.scalar(select(Study).where(
            Study.protocol_number == mapping.study))
        if study is None:
            continue
        site_id = None
        if mapping.site:
            site_id = uow.session.scalar(select(Site.id).where(
                Site.study_id == study.id, Site.number == mapping.site))
            if site_id is None:
                continue
        wanted[(study.id, mapping.role, site_id)] = "/".join(
            filter(None, (mapping.study, mapping.role, mapping.site)))

    current = uow.session.scalars(select(Membership).where(
        Membership.user_id == user_id, Membership.revoked_at.is_(None))).all()
    held = {(m.study_id, m.role, m.site_id) for m in current}
    granted: list[str] = []
    for key, label in wanted.items():
        if key not in held:
            study_id, role, site_id = key
            grant_membership(uow, user_id=user_id, study_id=study_id, role=role,
                             site_id=site_id, granted_via=via)
            granted.append(label)
    revoked: list[str] = []
    for m in current:
        if m.granted_via == via and (m.study_id, m.role, m.site_id) not in wanted:
            revoke_membership(uow, m.id, reason=(
                f"No group of the person at {config.label} grants this role any more "
                "(checked at sign-in)."))
            revoked.append(_label(uow, m))
    return granted, revoked


def _label(uow: UnitOfWork, m: Membership) -> str:
    study = uow.session.get(Study, m.study_id)
    site = uow.session.get(Site, m.site_id) if m.site_id is not None else None
    return "/".join(filter(None, (study.protocol_number if study else str(m.study_id),
                                  m.role, site.number if site else None)))


def identity_of(uow_session, user_id: int, providers: dict[str, ProviderConfig]  # type: ignore[no-untyped-def]
                ) -> SsoIdentity | None:
    """The user's link to a configured provider, if any: such users sign at the provider."""
    for link in uow_session.scalars(select(SsoIdentity).where(
            SsoIdentity.user_id == user_id).order_by(SsoIdentity.id)):
        if link.provider in providers:
            return link  # type: ignore[no-any-return]
    return None


def check_reauthentication(config: ProviderConfig, identity: Identity, *, subject: str,
                           started_at: datetime, now: datetime) -> ExternalAuthentication:
    """A signature may use this re-authentication only if the same person entered their
    credentials at the provider after we asked, within ``reauth_max_age_seconds``."""
    label = config.label
    if identity.subject != subject:
        raise SsoRefused(f"You re-authenticated at {label} as a different person than the "
                         "one signed in here. Nothing was signed.")
    if identity.auth_time is None:
        raise SsoRefused(f"{label} did not say when you entered your password. "
                         "Nothing was signed.")
    leeway = timedelta(seconds=config.leeway_seconds)
    age = int((now - identity.auth_time).total_seconds())
    if identity.auth_time + leeway < started_at or age > config.reauth_max_age_seconds:
        raise SsoRefused(
            f"{label} did not ask for your password again: it reports that you last entered "
            f"it at {identity.auth_time:%Y-%m-%d %H:%M:%S} UTC ({age} seconds ago; a "
            f"signature needs it within {config.reauth_max_age_seconds} seconds). Nothing "
            "was signed. If this repeats, tell your administrator: the provider may ignore "
            "prompt=login.")
    if identity.auth_time > now + leeway:
        raise SsoRefused(f"{label} reports a sign-in time in the future "
                         f"({identity.auth_time:%Y-%m-%d %H:%M:%S} UTC). Nothing was signed.")
    return ExternalAuthentication(provider=config.name, subject=identity.subject,
                                  auth_time=identity.auth_time,
                                  method=f"OIDC:{config.name}")
