"""Site lifecycle events: the status on ``sites`` plus the history and targets of ctms."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from ctms.sites.models import SitePlan, SiteStatusChange
from etmf.audit.store import PendingEvent, projection
from etmf.studies.models import Site


@projection("site.status_changed")
def site_status_changed(session: Session, event: PendingEvent) -> None:
    d = event.data
    site = session.get(Site, int(event.stream_id))
    assert site is not None
    effective = date.fromisoformat(d["effective_on"])
    site.status = d["to"]
    if d["to"] == "active" and site.activated_on is None:
        site.activated_on = effective
    site.version = event.stream_version
    session.add(SiteStatusChange(
        id=d["change_id"], site_id=site.id, study_id=d["study_id"], from_status=d["from"],
        to_status=d["to"], effective_on=effective, at=event.occurred_at,
        by_name=event.actor.name, reason=event.reason))


@projection("ctms.site_target_set")
def site_target_set(session: Session, event: PendingEvent) -> None:
    d = event.data
    plan = session.get(SitePlan, d["site_id"])
    if plan is None:
        plan = SitePlan(site_id=d["site_id"], study_id=d["study_id"])
        session.add(plan)
    plan.enrollment_target = d["enrollment_target"]
