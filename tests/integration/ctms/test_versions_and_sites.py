"""Study plan, protocol/ICF versions in force per site, and the site lifecycle gate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pytest

from ctms.sites.services import SiteNotReady, change_site_status
from ctms.studyplan import services as plan
from etmf.errors import Forbidden, InvalidTransition, ValidationError
from etmf.studies.models import Site


def _in_force(svc, site_id, kind, on):  # type: ignore[no-untyped-def]
    """The version in force, asked of one site and of every site at once (the study page's
    way): both must agree."""
    with svc.db.read_session() as s:
        v = plan.version_in_force(s, site_id, kind, on)
        study_id = s.get(Site, site_id).study_id
        every_site = [site.id for site in s.query(Site).filter_by(study_id=study_id)]
        at_once = plan.versions_in_force(s, study_id, every_site, on)[(site_id, kind)]
        assert (at_once.id if at_once else None) == (v.id if v else None)
        return v.label if v else None


@pytest.mark.req("FR-CTMS-1")
def test_protocol_version_in_force_is_right_across_an_amendment(ctms, svc, clock):
    site = ctms.w.site_ids["101"]
    assert _in_force(svc, site, "protocol", date(2026, 1, 9)) is None
    assert _in_force(svc, site, "protocol", date(2026, 1, 10)) == "v1.0"
    # Approved on 1 June, but v1.0 stays in force until the amendment is activated.
    assert _in_force(svc, site, "protocol", date(2026, 6, 14)) == "v1.0"
    assert _in_force(svc, site, "protocol", date(2026, 6, 15)) == "v2.0"
    assert _in_force(svc, site, "icf", clock.now().date()) == "v2.0"
    # Another site of the study has approved nothing: nothing is in force there.
    assert _in_force(svc, ctms.w.site_ids["102"], "protocol", date(2026, 7, 1)) is None


@pytest.mark.req("FR-CTMS-1")
def test_an_approval_needs_an_approved_irb_document_and_activation_after_approval(ctms, world):
    draft = world.document(ctms.manager, title="IRB draft", artifact="04.01.02", level="site",
                           site="102")
    with pytest.raises(ValidationError, match="not approved in the TMF"):
        ctms.run(plan.approve_version_at_site, site_id=world.site_ids["102"],
                 version_id=ctms.protocol["v1"], approval_document_id=draft,
                 approved_on=date(2026, 2, 1))


def test_study_plan_is_recorded_beside_the_study(ctms, world, svc):
    from ctms.studyplan.models import StudyPlan

    ctms.run(plan.set_study_plan, world.study_id, plan.PlanChange(
        indication="Asthma", planned_enrollment=120, planned_start=date(2026, 1, 1),
        planned_end=date(2027, 12, 31)))
    ctms.run(plan.set_study_plan, world.study_id, plan.PlanChange(
        indication="Severe asthma", planned_enrollment=150))
    with svc.db.read_session() as s:
        p = s.get(StudyPlan, world.study_id)
        assert (p.indication, p.planned_enrollment, p.planned_end) == ("Severe asthma", 150, None)
    with pytest.raises(Forbidden):
        ctms.run(plan.set_study_plan, world.study_id, plan.PlanChange(indication="x"),
                 by=ctms.coordinator)


@dataclass(frozen=True)
class FakeGap:
    artifact_id: str
    artifact_name: str
    problem: str
    document_id: int | None


def _version(svc, site_id):  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return s.get(Site, site_id).version


@pytest.mark.req("FR-CTMS-2")
def test_activation_is_blocked_with_the_list_of_missing_documents(ctms, world, svc):
    site = world.site_ids["102"]
    ctms.run(change_site_status, site, "initiation", expected_version=_version(svc, site))
    gaps = [FakeGap("a1", "Curriculum Vitae", "missing", None),
            FakeGap("a2", "Medical Licence", "expired on 2026-10-01", 7)]
    with pytest.raises(SiteNotReady) as refused:
        ctms.run(change_site_status, site, "active", expected_version=_version(svc, site),
                 gap_finder=lambda _s, _id, _today: gaps)
    assert "Curriculum Vitae: missing" in refused.value.message
    assert "Medical Licence: expired on 2026-10-01" in refused.value.message
    assert [g["artifact_id"] for g in refused.value.detail["gaps"]] == ["a1", "a2"]
    ctms.run(change_site_status, site, "active", expected_version=_version(svc, site),
             gap_finder=lambda _s, _id, _today: [])
    with svc.db.read_session() as s:
        row = s.get(Site, site)
        assert (row.status, row.activated_on) == ("active", date(2026, 11, 26))


@pytest.mark.req("FR-CTMS-2")
def test_site_steps_follow_the_lifecycle_and_closing_needs_a_reason(ctms, world, svc):
    site = world.site_ids["201"]
    with pytest.raises(InvalidTransition, match="Selection"):
        ctms.run(change_site_status, site, "enrolling", expected_version=_version(svc, site))
    with pytest.raises(ValidationError, match="reason"):
        ctms.run(change_site_status, site, "closed", expected_version=_version(svc, site))
    ctms.run(change_site_status, site, "closed", expected_version=_version(svc, site),
             reason="Not selected")
    from ctms.sites.services import status_history

    with svc.db.read_session() as s:
        steps = [(c.from_status, c.to_status, c.reason) for c in status_history(s, site)]
    assert steps == [("selection", "closed", "Not selected")]


def test_the_activation_gate_uses_the_edl_readiness_check_by_default(ctms, world, svc):
    from ctms.sites import services as sites
    from etmf.tracking import readiness

    assert sites.default_gap_finder() is readiness.site_gaps
    with svc.db.read_session() as s:
        gaps = sites.site_gaps(s, world.site_ids["102"], date(2026, 11, 26))
    assert all(hasattr(g, "artifact_name") and hasattr(g, "problem") for g in gaps)
