"""The signed-in user's profile: API tokens (shown once), second factor, session keep-alive."""

from __future__ import annotations

from flask import Blueprint, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from flask_security import auth_required
from sqlalchemy import select

from etmf.accounts import services as accounts
from etmf.accounts.authn import second_factor_required
from etmf.accounts.models import ApiToken
from etmf.bootstrap import services
from etmf.errors import ValidationError
from etmf.web import command, db_session

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("/")
@auth_required("session")
def profile():  # type: ignore[no-untyped-def]
    tokens = db_session().scalars(select(ApiToken).where(ApiToken.user_id == current_user.id)
                                  .order_by(ApiToken.id.desc())).all()
    return render_template("account/profile.html", tokens=tokens, now=services().clock.now(),
                           new_token=None, totp_required=second_factor_required(current_user),
                           max_days=accounts.MAX_TOKEN_DAYS)


@bp.post("/tokens")
@auth_required("session")
def create_token():  # type: ignore[no-untyped-def]
    days_text = request.form.get("days", "").strip()
    if not days_text.isdigit():
        raise ValidationError(f"Give the validity in days, a whole number from 1 to "
                              f"{accounts.MAX_TOKEN_DAYS}.")
    with command() as uow:
        token = accounts.create_api_token(uow, current_user.id, request.form.get("name", ""),
                                          int(days_text))
        uow.commit()
    tokens = db_session().scalars(select(ApiToken).where(ApiToken.user_id == current_user.id)
                                  .order_by(ApiToken.id.desc())).all()
    # Shown once, in this response only; never stored in the clear, never in the session.
    response = render_template("account/profile.html", tokens=tokens,
                               now=services().clock.now(), new_token=token,
                               totp_required=second_factor_required(current_user),
                               max_days=accounts.MAX_TOKEN_DAYS)
    return response, 201, {"Cache-Control": "no-store"}


@bp.post("/tokens/<int:token_id>/revoke")
@auth_required("session")
def revoke_token(token_id: int):  # type: ignore[no-untyped-def]
    with command() as uow:
        accounts.revoke_api_token(uow, current_user.id, token_id)
        uow.commit()
    flash("The token was revoked: it no longer works.", "success")
    return redirect(url_for("account.profile"))


@bp.get("/keepalive")
@auth_required("session")
def keepalive():  # type: ignore[no-untyped-def]
    """Touched by session.js when the person chooses to stay signed in: renews the activity
    mark now (an ordinary request renews it at most once a step)."""
    from etmf.accounts.guards import mark_activity, seconds_left

    mark_activity()
    return jsonify(status="ok", timeout_minutes=services().settings.session_timeout_minutes,
                   seconds_left=seconds_left())
