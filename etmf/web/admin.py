"""Administration: users, global roles, study memberships, locked accounts, inspector grants.

Administrators only (403 for everyone else). Every change is a command with its audit
event; the ones that need it ask for a reason; forms carry the record version so that two
administrators changing the same account get a 409, not a silent overwrite.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_security import auth_required
from sqlalchemy import select

from etmf.accounts import services as accounts
from etmf.accounts.models import InspectorGrant, Membership, User
from etmf.accounts.roles import ROLES
from etmf.accounts.security import current_access, password_policy_problems
from etmf.errors import Forbidden, NotFound, ValidationError
from etmf.reference_model.model import load_reference_model
from etmf.studies.models import Site, Study
from etmf.web import command, db_session

bp = Blueprint("admin", __name__, url_prefix="/admin")

NAV = [("Users", "admin.users", 90, "admin"),
       ("Locked accounts", "admin.locked", 91, "admin"),
       ("Inspector access", "admin.inspections", 92, "admin")]

#: Study roles an administrator can grant as a membership (inspectors get time-boxed grants).
MEMBERSHIP_ROLES = [r for r in ROLES.values() if r.study_scoped and r.code != "inspector"]


@bp.before_request
@auth_required("session")
def _administrators_only() -> None:
    if not current_access().is_admin:
        raise Forbidden("Only administrators can manage accounts and access.")


def _reason() -> str | None:
    return request.form.get("reason") or None


def _version() -> int:
    value = request.form.get("version", "")
    if not value.isdigit():
        raise ValidationError("The form is missing the record version; reload the page.")
    return int(value)


def _int(name: str, label: str, *, required: bool = True) -> int | None:
    value = request.form.get(name, "").strip()
    if not value:
        if required:
            raise ValidationError(f"Choose the {label}.")
        return None
    if not value.isdigit():
        raise ValidationError(f"The {label} {value!r} is not valid.")
    return int(value)


def _utc(name: str, label: str) -> datetime:
    value = request.form.get(name, "").strip()
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"The {label} {value!r} is not a date and time (use YYYY-MM-DDTHH:MM, UTC)."
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)  # the form says UTC
    return at.astimezone(UTC)


def _user(user_id: int) -> User:
    user = db_session().get(User, user_id)
    if user is None:
        raise NotFound("There is no such user.")
    return user


# ---- users -------------------------------------------------------------------------------------


@bp.get("/users")
def users():  # type: ignore[no-untyped-def]
    rows = db_session().scalars(select(User).order_by(User.email)).all()
    return render_template("admin/users.html", users=rows, form={})


@bp.post("/users")
def create_user():  # type: ignore[no-untyped-def]
    form = request.form
    password = form.get("password", "")
    problems = password_policy_problems(password)
    if problems:
        raise ValidationError("The initial password is not accepted: " + " ".join(problems))
    with command() as uow:
        user = accounts.create_user(uow, accounts.NewUser(
            email=form.get("email", ""), full_name=form.get("full_name", ""), password=password,
            global_roles=("admin",) if form.get("admin") == "yes" else ()))
        user_id = user.id
        uow.commit()
    flash(f"Account created for {form.get('full_name', '').strip()}.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.get("/users/<int:user_id>")
def user(user_id: int):  # type: ignore[no-untyped-def]
    found = _user(user_id)
    session = db_session()
    memberships = session.scalars(select(Membership).where(Membership.user_id == user_id)
                                  .order_by(Membership.id)).all()
    studies = session.scalars(select(Study).order_by(Study.protocol_number)).all()
    sites = session.scalars(select(Site).order_by(Site.study_id, Site.number)).all()
    return render_template("admin/user.html", user=found, memberships=memberships,
                           studies=studies, studies_by_id={s.id: s for s in studies},
                           sites=sites, sites_by_id={s.id: s for s in sites},
                           roles=MEMBERSHIP_ROLES, role_labels={r.code: r.label for r in
                                                               ROLES.values()})


def _user_command(user_id: int, action: str) -> None:
    version = _version()
    with command() as uow:
        if action == "deactivate":
            accounts.deactivate_user(uow, user_id, reason=_reason(), expected_version=version)
        elif action == "reactivate":
            accounts.reactivate_user(uow, user_id, reason=_reason(), expected_version=version)
        elif action == "unlock":
            accounts.unlock_user(uow, user_id, reason=_reason(), expected_version=version)
        else:
            roles = ("admin",) if request.form.get("admin") == "yes" else ()
            accounts.set_global_roles(uow, user_id, roles, reason=_reason(),
                                      expected_version=version)
        uow.commit()


@bp.post("/users/<int:user_id>/deactivate")
def deactivate(user_id: int):  # type: ignore[no-untyped-def]
    _user_command(user_id, "deactivate")
    flash("The account was deactivated. It is kept, with its history; it cannot sign in.",
          "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/users/<int:user_id>/reactivate")
def reactivate(user_id: int):  # type: ignore[no-untyped-def]
    _user_command(user_id, "reactivate")
    flash("The account was reactivated.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/users/<int:user_id>/unlock")
def unlock(user_id: int):  # type: ignore[no-untyped-def]
    _user_command(user_id, "unlock")
    flash("The account was unlocked.", "success")
    back = request.form.get("back")
    return redirect(url_for("admin.locked") if back == "locked"
                    else url_for("admin.user", user_id=user_id))


@bp.post("/users/<int:user_id>/global-roles")
def global_roles(user_id: int):  # type: ignore[no-untyped-def]
    _user_command(user_id, "roles")
    flash("The global roles were changed.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


# ---- memberships -------------------------------------------------------------------------------


@bp.post("/users/<int:user_id>/memberships")
def grant_membership(user_id: int):  # type: ignore[no-untyped-def]
    role = request.form.get("role", "")
    if role not in {r.code for r in MEMBERSHIP_ROLES}:
        raise ValidationError(f"Choose a study role; {role!r} is not one. Inspectors get a "
                              "time-limited grant on the inspector access page.")
    study_id = _int("study_id", "study")
    site_id = _int("site_id", "site", required=False)
    with command() as uow:
        if not uow.session.get(User, user_id):
            raise NotFound("There is no such user.")
        accounts.grant_membership(uow, user_id=user_id, study_id=study_id,  # type: ignore[arg-type]
                                  role=role, site_id=site_id)
        uow.commit()
    flash(f"Granted the role {ROLES[role].label}.", "success")
    return redirect(url_for("admin.user", user_id=user_id))


@bp.post("/memberships/<int:membership_id>/revoke")
def revoke_membership(membership_id: int):  # type: ignore[no-untyped-def]
    membership = db_session().get(Membership, membership_id)
    if membership is None:
        raise NotFound("There is no such study role.")
    with command() as uow:
        accounts.revoke_membership(uow, membership_id, reason=_reason())
        uow.commit()
    flash("The study role was revoked.", "success")
    return redirect(url_for("admin.user", user_id=membership.user_id))


# ---- locked accounts ---------------------------------------------------------------------------


@bp.get("/locked")
def locked():  # type: ignore[no-untyped-def]
    rows = db_session().scalars(select(User).where(User.locked_at.is_not(None))
                                .order_by(User.locked_at)).all()
    return render_template("admin/locked.html", users=rows)


# ---- inspector grants --------------------------------------------------------------------------


@bp.get("/inspections")
def inspections():  # type: ignore[no-untyped-def]
    from etmf.accounts.authn import is_inspector_account
    from etmf.bootstrap import services

    session = db_session()
    grants = session.scalars(select(InspectorGrant).order_by(InspectorGrant.starts_at.desc(),
                                                             InspectorGrant.id.desc())).all()
    all_users = session.scalars(select(User).where(User.active.is_(True))
                                .order_by(User.full_name)).all()
    candidates = [u for u in all_users if not u.is_admin and (
        not u.memberships or is_inspector_account(session, u.id))]
    studies = session.scalars(select(Study).order_by(Study.protocol_number)).all()
    sites = session.scalars(select(Site).order_by(Site.study_id, Site.number)).all()
    zones = [(z.number, z.name) for z in load_reference_model().zones]
    return render_template(
        "admin/inspections.html", grants=grants, candidates=candidates, studies=studies,
        studies_by_id={s.id: s for s in studies}, sites=sites,
        sites_by_id={s.id: s for s in sites},
        users_by_id={u.id: u for u in session.scalars(select(User))},
        zones=zones, now=services().clock.now())


@bp.post("/inspections")
def grant_inspection():  # type: ignore[no-untyped-def]
    user_id = _int("user_id", "inspector")
    study_id = _int("study_id", "study")
    cmd = accounts.NewInspection(
        user_id=user_id, study_id=study_id,  # type: ignore[arg-type]
        starts_at=_utc("starts_at", "start"), ends_at=_utc("ends_at", "end"),
        zones=tuple(request.form.getlist("zones")),
        site_ids=tuple(int(v) for v in request.form.getlist("site_ids") if v.isdigit()),
        reason=_reason())
    with command() as uow:
        accounts.grant_inspection(uow, cmd)
        uow.commit()
    flash("Inspector access granted.", "success")
    return redirect(url_for("admin.inspections"))


@bp.post("/inspections/<int:grant_id>/revoke")
def revoke_inspection(grant_id: int):  # type: ignore[no-untyped-def]
    with command() as uow:
        accounts.revoke_inspection(uow, grant_id, reason=_reason())
        uow.commit()
    flash("Inspector access withdrawn.", "success")
    return redirect(url_for("admin.inspections"))
