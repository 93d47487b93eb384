"""benchmarks/generate.py at a tiny size: the instance it makes is a normal, sound instance.

The chain verifies and replaying the log rebuilds the read tables it bulk-loaded; every blob
is stored and verifies; `etmf check` passes; the pages and search answer for its accounts;
and the same seed and day give the same audit log.
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from etmf.cli import main as etmf_cli

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def generate() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("scale_generate",
                                                  ROOT / "benchmarks" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["scale_generate"] = module
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("scale_generate", None)


def _quiet(_message: str) -> None:
    pass


def _app(instance: Path):  # type: ignore[no-untyped-def]
    from etmf import create_app
    from etmf.settings import load_settings

    return create_app(load_settings(overrides={"instance_path": str(instance)}, environ={}))


def test_generated_instance_verifies_serves_and_searches(
        generate: ModuleType, tmp_path: Path, database_url: str) -> None:
    from etmf.audit.models import Event
    from etmf.bootstrap import services, shutdown
    from etmf.documents import counts
    from etmf.documents.models import Document, DocumentVersion, QcIssue
    from etmf.studies.models import Site

    url = database_url if database_url.startswith("postgresql") else ""
    instance = tmp_path / "scale"
    summary = generate.generate(instance, documents=60, sites=2, countries=2, seed=11,
                                database_url=url, signatures=1, pool_per_artifact=1,
                                echo=_quiet, bars=False)
    assert summary.documents == 60
    assert summary.signatures == 1
    assert summary.events > summary.documents  # the lifecycle is in the log

    runner = CliRunner()
    verified = runner.invoke(etmf_cli, ["audit", "verify", "--instance", str(instance)])
    assert verified.exit_code == 0, verified.output
    assert "Replay: the log rebuilds the live tables exactly." in verified.output
    assert f"Chain: intact, {summary.events} events" in verified.output
    blobs = runner.invoke(etmf_cli, ["storage", "verify", "--instance", str(instance)])
    assert blobs.exit_code == 0, blobs.output
    checked = runner.invoke(etmf_cli, ["check", "--instance", str(instance)])
    assert checked.exit_code == 0, checked.output
    assert "All 6 checks passed." in checked.output

    app = _app(instance)
    try:
        with app.app_context():
            svc = services(app)
            with svc.db.read_session() as session:
                assert session.scalar(select(func.count()).select_from(Site)) == 2
                statuses = set(session.scalars(select(Document.status).distinct()))
                assert "approved" in statuses
                assert session.scalar(select(func.count()).select_from(Event)) == summary.events
                # The kept counts the tree and the list read agree with the bulk-written
                # documents, per status too (they once stayed empty).
                by_status = dict(session.execute(select(Document.status, func.count())
                                                 .group_by(Document.status)).all())
                assert counts.count(session, 1) == 60
                assert {s: counts.count(session, 1, status=s) for s in by_status} == by_status
                # Versions beyond the first exist, and the signed rendition points back.
                assert session.scalar(select(func.count()).where(
                    DocumentVersion.signed_from_version_id.is_not(None))) == 1
                assert session.scalar(select(func.count()).select_from(QcIssue)) is not None
                doc_id, number = session.execute(
                    select(Document.id, DocumentVersion.number)
                    .join(DocumentVersion, DocumentVersion.id == Document.current_version_id)
                    .where(Document.status == "approved").order_by(Document.id).limit(1)
                ).one()
                title = session.get(Document, doc_id).title  # type: ignore[union-attr]
        client = app.test_client()
        page = client.get("/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
        assert token, "no CSRF token on the sign-in page"
        signed_in = client.post("/login", data={
            "email": f"manager@{generate.DOMAIN}", "password": generate.PASSWORD,
            "csrf_token": token.group(1)})
        assert signed_in.status_code == 302
        for path in ("/studies/1", "/studies/1/documents", "/studies/1/documents?zone=05",
                     f"/documents/{doc_id}"):
            response = client.get(path)
            assert response.status_code == 200, path
        detail = client.get(f"/documents/{doc_id}").get_data(as_text=True)
        assert title.split(" – ")[0].split(" (")[0] in detail.replace("&#39;", "'")
        download = client.get(f"/documents/{doc_id}/versions/{number}/download")
        assert download.status_code == 200
        assert download.data.startswith(b"%PDF")
        word = title.split()[0].lower()
        found = client.get(f"/search?study=1&q={word}")
        assert found.status_code == 200
        assert f"/documents/{doc_id}" in found.get_data(as_text=True)
    finally:
        with app.app_context():
            shutdown(app)


def test_same_seed_and_day_give_the_same_log(generate: ModuleType, tmp_path: Path) -> None:
    from etmf.audit.models import Event
    from etmf.bootstrap import services, shutdown

    heads = []
    for name in ("first", "second"):
        summary = generate.generate(tmp_path / name, documents=25, sites=2, countries=2,
                                    seed=5, signatures=0, pool_per_artifact=1,
                                    as_of=date(2026, 6, 30), echo=_quiet, bars=False)
        app = _app(summary.instance)
        try:
            with app.app_context(), services(app).db.read_session() as session:
                heads.append(session.execute(
                    select(Event.seq, Event.hash).order_by(Event.seq.desc()).limit(1)).one())
        finally:
            with app.app_context():
                shutdown(app)
    assert heads[0] == heads[1]
    assert heads[0][0] > 25
