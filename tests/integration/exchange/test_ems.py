"""EMS export and import: schema-valid packages, a dry run that reports, an idempotent import."""

from __future__ import annotations

import io
import zipfile
from datetime import date

import pytest
from lxml import etree

from etmf.accounts.access import Access
from etmf.bootstrap import services
from etmf.documents import services as docs
from etmf.documents.lifecycle import Action
from etmf.errors import Conflict
from etmf.exchange import ems
from etmf.exchange.compare import diff, study_facts
from etmf.exchange.export import Selection, write_package
from etmf.exchange.importer import dry_run, import_package
from tests.conftest import make_pdf

REFERENCE = "etmf.reference_model"


@pytest.fixture
def filled(world):  # type: ignore[no-untyped-def]
    """Approved, superseded, withdrawn, draft and site-level documents."""
    author = world.user("tmf_specialist", name="Ada Author")
    qc = world.user("qc_reviewer", name="Quentin QC")
    manager = world.user("study_manager", name="Mia Manager")
    protocol = world.document(author, title="Protocol", state="approved", qc=qc,
                              document_date=date(2026, 1, 5), person="Dr Who")
    stored = world.store_file(make_pdf("Protocol v2"), filename="protocol-v2.pdf")
    with world.uow(author.name, author.id) as uow:
        docs.add_version(uow, world.access(author), protocol, stored, label="2.0",
                         expected_version=3)
        uow.commit()
    for action, by, expected in ((Action.SUBMIT_QC, author, 4), (Action.APPROVE, qc, 5)):
        with world.uow(by.name, by.id) as uow:
            docs.transition(uow, world.access(by), protocol, action, expected_version=expected)
            uow.commit()
    old = world.document(author, title="Old plan", state="approved", qc=qc,
                         artifact="01.01.01")
    with world.uow(manager.name, manager.id) as uow:
        docs.transition(uow, world.access(manager), old, Action.WITHDRAW, expected_version=3,
                        reason="replaced by the new plan")
        uow.commit()
    world.document(author, title="Draft notes", artifact="01.01.01")
    world.document(author, title="CV of the PI", artifact="05.02.04", level="site",
                   site="201", state="approved", qc=qc, expiry_date=date(2028, 1, 1))
    return {"manager": manager, "protocol": protocol, "author": author}


def _export(app, world, manager, selection=None) -> bytes:  # type: ignore[no-untyped-def]
    svc = services(app)
    selection = selection or Selection()
    buf = io.BytesIO()
    with svc.db.read_session() as session:
        write_package(session, svc.blobs, world.study_id, buf, now=svc.clock.now(),
                      selection=selection, access=world.access(manager))
    return buf.getvalue()


def _admin() -> Access:
    return Access(user_id=None, name="Importer (test)", is_admin=True)


@pytest.mark.req("FR-EXCH-1")
def test_export_is_a_valid_ems_package_with_every_version_and_its_state(app, world, filled):
    data = _export(app, world, filled["manager"])
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        root = ems.parse_manifest(zf.read("exchange.xml"))
        assert ems.schema_errors(root) == []
        objects = root.findall(ems.Q + "OBJECT")
        assert len(objects) == 5  # protocol v1 + v2, old plan, draft, CV
        states = sorted(ems.text_of(o, "OBJECTVERSIONSTATE") for o in objects)
        assert states == ["Current", "Current", "Current", "Obsolete", "Superseded"]
        for o in objects:
            f = o.find(ems.Q + "FILE")
            path = ems.text_of(f, "CONTENTURL")
            assert path.split("/")[0] == ems.text_of(o, "ARTIFACTNUMBER")[:2]
            import hashlib
            assert ems.parse_integrity(ems.text_of(f, "INTEGRITY")) == hashlib.sha256(
                zf.read(path)).hexdigest()
            assert f.findall(ems.Q + "AUDITRECORD"), "every file carries its audit records"
        cv = next(o for o in objects if ems.text_of(o, "OBJECTTITLE") == "CV of the PI")
        assert ems.text_of(cv, "COUNTRYID") == "FRA" and ems.text_of(cv, "SITEID") == "201"
        assert ems.text_of(cv, "OBJECTEXPIRYDATE") == "01-JAN-2028"
        assert ems.metadata_of(cv)["ETMF_VERSION_STATUS"] == "approved"


@pytest.mark.req("FR-EXCH-1")
def test_a_selection_exports_only_those_zones_and_sites(app, world, filled):
    data = _export(app, world, filled["manager"], Selection(zones=frozenset({"05"})))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        root = ems.parse_manifest(zf.read("exchange.xml"))
    assert [ems.text_of(o, "OBJECTTITLE") for o in root.findall(ems.Q + "OBJECT")] == [
        "CV of the PI"]


@pytest.mark.req("FR-EXCH-2")
def test_round_trip_into_an_empty_instance_leaves_no_difference(app, world, filled,
                                                                second_app):
    data = _export(app, world, filled["manager"])
    svc2 = services(second_app)
    with svc2.db.read_session() as session:
        report = dry_run(session, io.BytesIO(data))
    assert report.ok is False  # no such study, countries or sites yet: listed
    assert report.unknown_countries == ["FR"] and report.unknown_sites == ["201"]
    from etmf.audit.store import Actor, unit_of_work

    with second_app.app_context(), unit_of_work(svc2.db, svc2.clock,
                                                Actor(None, "Importer (test)")) as uow:
        result = import_package(uow, _admin(), svc2.blobs, io.BytesIO(data), study_id=None,
                                create_missing=True)
        uow.commit()
    assert (result.documents, result.versions) == (4, 5)
    with services(app).db.read_session() as s1, svc2.db.read_session() as s2:
        assert diff(study_facts(s1, "TST-001"), study_facts(s2, "TST-001")) == []
        from etmf.exchange.models import ImportedAuditRecord
        assert s2.query(ImportedAuditRecord).count() > 0
    # Importing it again changes nothing.
    with unit_of_work(svc2.db, svc2.clock, Actor(None, "Importer (test)")) as uow:
        again = import_package(uow, _admin(), svc2.blobs, io.BytesIO(data), study_id=None,
                               create_missing=True)
        uow.commit()
    assert again.documents == 0 and again.skipped
    from etmf.audit.service import replay_and_compare

    with svc2.db.read_session() as s2:
        assert replay_and_compare(s2) == []


@pytest.mark.req("FR-EXCH-3")
def test_a_corrupted_file_is_named_by_the_dry_run_and_refused(app, world, filled, second_app):
    data = _export(app, world, filled["manager"])
    src = zipfile.ZipFile(io.BytesIO(data))
    victim = next(n for n in src.namelist() if "CV of the PI" in n)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info in src.infolist():
            body = src.read(info)
            zf.writestr(info.filename, body + b"tampered" if info.filename == victim else body)
    svc = services(app)
    with svc.db.read_session() as session:
        report = dry_run(session, io.BytesIO(out.getvalue()), world.study_id)
    assert [f.path for f in report.bad_files] == [victim]
    assert any(victim in line and "checksum mismatch" in line for line in report.lines())
    from etmf.audit.store import Actor, unit_of_work

    manager = filled["manager"]
    with unit_of_work(svc.db, svc.clock, Actor(manager.id, manager.name)) as uow, \
            pytest.raises(Conflict):
        import_package(uow, world.access(manager), svc.blobs, io.BytesIO(out.getvalue()),
                       study_id=world.study_id)


def test_the_working_groups_example_goes_through_the_dry_run(app, world):
    from importlib import resources

    xml = resources.files(REFERENCE).joinpath("data/ems_example_exchange.xml").read_bytes()
    root = etree.fromstring(xml)
    url = root.find(f"{ems.Q}OBJECT/{ems.Q}FILE/{ems.Q}CONTENTURL").text
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("exchange.xml", xml)
        zf.writestr(url, make_pdf("Medical licence"))
    with services(app).db.read_session() as session:
        report = dry_run(session, buf, world.study_id)
    text = "\n".join(report.lines())
    assert "valid against the EMS schema" in text
    assert "is not a SHA-256" in text  # the example's checksum is 32 hex digits only
    assert report.unknown_countries == ["US"] and report.unknown_sites == ["US-204"]
    assert "John Smith" in report.unknown_people
    assert not report.ok
