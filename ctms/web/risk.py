"""The risk dashboard: a site × key-risk-indicator heat map, each cell linked to its records,
the trend of the daily snapshots (an SVG chart with its figures in a table), and the study's
thresholds."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_security import auth_required

from ctms.risk import services as risk
from ctms.risk.charts import trend_chart
from ctms.risk.indicators import INDICATORS, LEVEL_LABELS
from ctms.risk.trend import RED_COUNT, trend, trend_choices
from etmf.accounts.roles import Permission
from etmf.accounts.security import current_access
from etmf.bootstrap import services
from etmf.errors import ValidationError
from etmf.web import command, db_session
from etmf.web.studies import load_study

bp = Blueprint("risk", __name__, url_prefix="/ctms")

#: Where the records behind each indicator are listed (endpoint, per-site query).
DRILL = {"enrollment": "ctms.subjects", "screen_failure": "ctms.subjects",
         "deviation_rate": "monitoring.deviations", "sae_timeliness": "monitoring.safety_page",
         "action_items": "monitoring.visits", "documents": "tracking.readiness",
         "monitoring": "monitoring.visits", "data_entry_lag": "monitoring.site_page"}


def drill_url(code: str, study_id: int, site_id: int) -> str:
    if code == "documents":
        return url_for("tracking.readiness", study_id=study_id, site=site_id)
    if code == "data_entry_lag":
        return url_for(DRILL[code], study_id=study_id, site_id=site_id, _anchor="data-entry")
    return url_for(DRILL[code], study_id=study_id, site=site_id)


@bp.get("/studies/<int:study_id>/risk")
@auth_required("session")
def dashboard(study_id: int):  # type: ignore[no-untyped-def]
    study = load_study(study_id)
    access = current_access()
    access.require(Permission.VIEW_RISK, study_id)
    session = db_session()
    today = services().clock.now().date()
    rows = risk.heat_map(session, study_id, today, access.site_scope(study_id))
    chosen = request.args.get("trend", RED_COUNT)
    if chosen not in dict(trend_choices()):
        chosen = RED_COUNT
    days = request.args.get("days", 30, type=int)
    days = days if days in (14, 30, 90) else 30
    t = trend(session, study_id, today, indicator=chosen, days=days,
              site_ids=access.site_scope(study_id))
    return render_template("risk/dashboard.html", study=study, rows=rows,
                           indicators=INDICATORS, labels=LEVEL_LABELS, drill=drill_url,
                           trend=t, trend_svg=trend_chart(t), trend_choices=trend_choices(),
                           thresholds=risk.thresholds(session, study_id),
                           can_manage=access.can(Permission.MANAGE_STUDY, study_id))


@bp.post("/studies/<int:study_id>/risk/thresholds")
@auth_required("session")
def thresholds(study_id: int):  # type: ignore[no-untyped-def]
    access = current_access()
    access.require(Permission.MANAGE_STUDY, study_id)
    code = request.form.get("indicator", "")
    try:
        with command() as uow:
            risk.set_threshold(uow, access, study_id, code,
                               amber=request.form.get("amber", ""),
                               red=request.form.get("red", ""))
            uow.commit()
        flash("The thresholds are saved.", "success")
    except ValidationError as refused:
        flash(refused.message, "error")
    return redirect(url_for("risk.dashboard", study_id=study_id))
