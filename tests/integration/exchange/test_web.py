"""The exchange page: streamed download, dry run upload, background export job."""

from __future__ import annotations

import io
import zipfile

import pytest

from etmf.exchange import ems
from tests.conftest import csrf_from


@pytest.fixture
def settings_overrides() -> dict[str, object]:
    return {"jobs_runner": "inline"}


@pytest.fixture
def manager_client(world, login):  # type: ignore[no-untyped-def]
    author = world.user("tmf_specialist", name="Ada Author")
    qc = world.user("qc_reviewer", name="Quentin QC")
    world.document(author, title="Protocol", state="approved", qc=qc)
    return login(world.user("study_manager", name="Mia Manager"))


@pytest.mark.req("FR-EXCH-1")
def test_manager_downloads_the_package_and_dry_runs_it(world, manager_client):
    page = manager_client.get(f"/studies/{world.study_id}/exchange")
    assert page.status_code == 200
    response = manager_client.get(f"/studies/{world.study_id}/exchange/export.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    data = response.get_data()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert ems.schema_errors(ems.parse_manifest(zf.read("exchange.xml"))) == []
    token = csrf_from(page.get_data(as_text=True))
    report = manager_client.post(f"/studies/{world.study_id}/exchange/import", data={
        "csrf_token": token, "mode": "dry_run", "file": (io.BytesIO(data), "export.zip")})
    html = report.get_data(as_text=True)
    assert "valid against the EMS schema" in html
    assert "1 object(s) were imported before" not in html  # own export: not an import


def test_a_large_export_runs_as_a_job_with_a_download_link(world, manager_client):
    page = manager_client.get(f"/studies/{world.study_id}/exchange")
    response = manager_client.post(f"/studies/{world.study_id}/exchange/export-job",
                                   data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302 and "/jobs/" in response.headers["Location"]
    job_url = response.headers["Location"]
    result = manager_client.get(job_url.rstrip("/") + "/download")
    assert result.status_code == 200
    with zipfile.ZipFile(io.BytesIO(result.get_data())) as zf:
        assert "exchange.xml" in zf.namelist()
