"""The tracking API (/api/v1): completeness as on the dashboard, the expiry windows and
inspection readiness, with a bearer token, limited to the user's sites; in the OpenAPI
document."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.integration.documents.test_api_documents import _token

from .test_edl_and_metrics import _fixture_study


@pytest.fixture
def study(tracker, clock):  # type: ignore[no-untyped-def]
    w = _fixture_study(tracker, clock)
    today = clock.now().date()
    cv = tracker.file("05.02.04", site="102", expiry_date=today + timedelta(days=20))
    tracker.approve(cv)
    return w, cv


def _auth(login, user) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {"Authorization": f"Bearer {_token(login(user))}"}


@pytest.mark.req("FR-TRACK-2")
def test_completeness_api_gives_the_dashboard_figures(tracker, study, login, app):
    w, _cv = study
    auth = _auth(login, tracker.manager)
    client = app.test_client()
    body = client.get(f"/api/v1/studies/{w.study_id}/completeness", headers=auth).get_json()
    # the hand-computed study (test_edl_and_metrics) plus a CV approved at 102
    assert (body["study"]["expected"], body["study"]["approved"]) == (6, 4)
    sites = {g["key"]: g for g in body["sites"]}
    assert sites[str(w.site_ids["102"])]["percent"] == 100
    assert (sites[str(w.site_ids["101"])]["approved"], sites[str(w.site_ids["101"])]
            ["overdue"]) == (2, 2)
    assert body["timeliness"]["filing_target"] == 10
    assert body["quality"]["open_issues"] == 1


def test_expiring_and_readiness_api(tracker, study, login, app, clock):
    w, cv = study
    auth = _auth(login, tracker.manager)
    client = app.test_client()
    base = f"/api/v1/studies/{w.study_id}"
    soon = client.get(f"{base}/expiring?window=30", headers=auth).get_json()
    assert [d["document_id"] for d in soon["documents"]] == [cv]
    assert client.get(f"{base}/expiring?window=expired", headers=auth).get_json()[
        "documents"] == []
    bad = client.get(f"{base}/expiring?window=7", headers=auth)
    assert bad.status_code == 400 and bad.is_json
    ready = client.get(f"{base}/readiness?site={w.site_ids['101']}", headers=auth).get_json()
    assert ready["ready"] is False
    # the second sub-I CV was rejected, the 1572 is a draft: filed, not approved
    assert ready["missing"] == []
    assert sorted(e["artifact_number"] for e in ready["not_approved"]) == ["05.02.05",
                                                                           "05.02.08"]
    assert ready["open_issues"] and ready["pending_qc"] == []


def test_a_site_user_sees_only_their_sites_figures(tracker, study, login, app):
    w, _cv = study
    site_user = w.user("site_staff", site="102")
    client = app.test_client()
    body = client.get(f"/api/v1/studies/{w.study_id}/completeness",
                      headers=_auth(login, site_user)).get_json()
    assert [g["key"] for g in body["sites"]] == [str(w.site_ids["102"])]
    assert body["study"]["expected"] == 2  # the trial's protocol and 102's CV


def test_tracking_operations_are_in_the_openapi_document(app):
    spec = app.test_client().get("/api/v1/openapi.json").get_json()
    for path in ("completeness", "expiring", "readiness"):
        assert "get" in spec["paths"][f"/studies/{{study_id}}/{path}"]
    assert "CompletenessGroup" in spec["components"]["schemas"]
