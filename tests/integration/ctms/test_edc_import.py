"""EDC import of CDISC ODM 1.3 (as REDCap exports it): dry run, one-transaction import,
idempotence, and safe XML (an external entity is reported, never resolved)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from ctms.edc import services as edc
from ctms.edc.models import EdcImport
from ctms.subjects import services as subjects
from ctms.subjects.models import Subject, Visit
from etmf.audit.models import Event
from etmf.errors import Forbidden, ValidationError

SECRET = "TOP-SECRET-LINE-42"


def _odm(subjects_xml: str, doctype: str = "", study_name: str = "TST-001") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>{doctype}
<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3" xmlns:redcap="https://projectredcap.org"
     ODMVersion="1.3.2" FileType="Snapshot" FileOID="F.1" CreationDateTime="2026-11-26T08:00:00">
 <Study OID="Project.TST001"><GlobalVariables><StudyName>{study_name}</StudyName>
  <StudyDescription>x</StudyDescription><ProtocolName>TST-001</ProtocolName></GlobalVariables>
  <MetaDataVersion OID="Metadata.TST001_1" Name="TST-001">
   <StudyEventDef OID="Event.baseline_arm_1" Name="Baseline" Repeating="No" Type="Common"/>
   <StudyEventDef OID="Event.week_2_arm_1" Name="Week 2" Repeating="No" Type="Common"/>
  </MetaDataVersion></Study>
 <ClinicalData StudyOID="Project.TST001" MetaDataVersionOID="Metadata.TST001_1">
{subjects_xml}
 </ClinicalData>
</ODM>""".encode()


def _subject(key: str, events: list[tuple[str, str, list[tuple[str, str]]]]) -> str:
    out = [f'  <SubjectData SubjectKey="{key}" redcap:RecordIdField="record_id">']
    for oid, unique, items in events:
        out.append(f'   <StudyEventData StudyEventOID="{oid}" StudyEventRepeatKey="1" '
                   f'redcap:UniqueEventName="{unique}"><FormData FormOID="Form.visit" '
                   'FormRepeatKey="1"><ItemGroupData ItemGroupOID="visit.visit" '
                   'ItemGroupRepeatKey="1">')
        out += [f'    <ItemData ItemOID="{i}" Value="{v}"/>' for i, v in items]
        out.append("   </ItemGroupData></FormData></StudyEventData>")
    out.append("  </SubjectData>")
    return "\n".join(out)


@pytest.fixture
def edc_world(ctms, world, tmp_path):  # type: ignore[no-untyped-def]
    """Subjects 101-001 (consented, in screening) and 101-002 (enrolled 2026-11-01)."""
    for spec in (subjects.VisitSpec("V1", "Baseline", 0),
                 subjects.VisitSpec("V2", "Week 2", 14, 3, 3)):
        ctms.run(subjects.define_visit, world.study_id, spec)
    ids = {}
    for number in ("101-001", "101-002"):
        ids[number] = ctms.run(subjects.screen_subject, site_id=world.site_ids["101"],
                               number=number, screened_on=date(2026, 11, 1),
                               by=ctms.coordinator)
        ctms.run(subjects.record_consent, ids[number], icf_version_id=ctms.icf["v2"],
                 consented_on=date(2026, 11, 1), by=ctms.coordinator)
    ctms.run(subjects.change_status, ids["101-002"], "enrolled",
             effective_on=date(2026, 11, 1), by=ctms.coordinator)
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    return ids, secret


def _run(ctms, world, data, *, dry_run, by=None):  # type: ignore[no-untyped-def]
    by = by or ctms.coordinator
    with world.uow(by.name, by.id) as uow:
        report = edc.import_odm(uow, world.access(by), world.study_id, data,
                                filename="export.xml", dry_run=dry_run)
        if report.imported:
            uow.commit()
    return report


def _state(svc):  # type: ignore[no-untyped-def]
    with svc.db.read_session() as s:
        return (sorted((x.number, x.status, x.enrolled_on) for x in s.scalars(select(Subject))),
                sorted((v.subject_id, v.code, v.status, v.completed_on, v.source)
                       for v in s.scalars(select(Visit))),
                s.scalar(select(func.count()).select_from(Event)))


@pytest.mark.req("FR-CTMS-9")
def test_dry_run_reports_unknown_subject_malformed_date_and_entity_and_imports_nothing(
        ctms, world, svc, edc_world):
    _ids, secret = edc_world
    doctype = (f'\n<!DOCTYPE ODM [ <!ENTITY xxe SYSTEM "file://{secret}"> ]>')
    data = _odm("\n".join([
        _subject("101-001", [("Event.baseline_arm_1", "baseline_arm_1",
                              [("enrollment_date", "2026-11-05"), ("visit_date", "2026-11-05")]),
                             ("Event.week_2_arm_1", "week_2_arm_1",
                              [("visit_date", "2026-19-40")])]),
        _subject("101-002", [("Event.baseline_arm_1", "baseline_arm_1",
                              [("visit_date", "2026-11-01")]),
                             ("Event.unscheduled_arm_1", "unscheduled_arm_1",
                              [("visit_date", "2026-11-10")])]),
        _subject("999-999", [("Event.baseline_arm_1", "baseline_arm_1",
                              [("visit_date", "2026-11-02")])]),
    ]), doctype=doctype, study_name="&xxe;")
    before = _state(svc)
    report = _run(ctms, world, data, dry_run=True)
    assert _state(svc) == before  # nothing imported by a dry run
    kinds = sorted(p.kind for p in report.problems)
    assert kinds == ["entity", "malformed_date", "unknown_event", "unknown_subject"]
    text = repr(report.as_dict())
    assert SECRET not in text and "xxe" in text  # reported by name, never resolved
    assert [(c.subject, c.what) for c in report.changes] == [
        ("101-001", "Enrolled on 2026-11-05"),
        ("101-001", "Visit V1 completed on 2026-11-05"),
        ("101-002", "Visit V1 completed on 2026-11-01")]

    imported = _run(ctms, world, data, dry_run=False)
    assert imported.imported and imported.changes == report.changes
    subjects_now, visits_now, _ = _state(svc)
    assert ("101-001", "enrolled", date(2026, 11, 5)) in subjects_now
    assert sum(1 for v in visits_now if v[2] == "completed" and v[4] == "edc") == 2

    after_first = _state(svc)
    again = _run(ctms, world, data, dry_run=False)  # importing twice changes nothing
    assert not again.imported and again.changes == [] and again.unchanged == 3
    assert _state(svc) == after_first
    with svc.db.read_session() as s:
        assert s.scalar(select(func.count()).select_from(EdcImport)) == 1


@pytest.mark.req("FR-CTMS-9")
def test_a_refused_change_is_listed_and_the_rest_is_imported_in_one_transaction(
        ctms, world, svc, edc_world):
    # 101-001 is not enrolled: its V2 cannot be completed; a future date is refused too.
    data = _odm("\n".join([
        _subject("101-001", [("Event.week_2_arm_1", "week_2_arm_1",
                              [("visit_date", "2026-11-15")])]),
        _subject("101-002", [("Event.week_2_arm_1", "week_2_arm_1",
                              [("visit_date", "2026-12-24")]),
                             ("Event.baseline_arm_1", "baseline_arm_1",
                              [("visit_date", "2026-11-01")])]),
    ]))
    report = _run(ctms, world, data, dry_run=False)
    assert [p.kind for p in report.problems] == ["refused", "refused"]
    assert "in the future" in report.problems[1].message
    assert [c.what for c in report.changes] == ["Visit V1 completed on 2026-11-01"]


@pytest.mark.req("FR-CTMS-9")
def test_not_odm_too_large_or_not_allowed_is_refused(ctms, world, edc_world, monkeypatch):
    from ctms.edc import odm

    for bad in (b"", b"<html/>", b"<ODM><unclosed></ODM>"):
        with pytest.raises(ValidationError):
            _run(ctms, world, bad, dry_run=True)
    monkeypatch.setattr(odm, "MAX_BYTES", 100)
    with pytest.raises(ValidationError, match="at most"):
        _run(ctms, world, _odm(""), dry_run=True)
    monitor = world.user("monitor")
    with pytest.raises(Forbidden):
        _run(ctms, world, _odm(""), dry_run=True, by=monitor)


def test_an_entity_bomb_is_not_expanded():
    from ctms.edc.odm import read_odm

    lol = "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    data = (f'<?xml version="1.0"?><!DOCTYPE ODM [<!ENTITY l0 "lol">{lol}]>'
            '<ODM xmlns="http://www.cdisc.org/ns/odm/v1.3"><Study OID="S"><GlobalVariables>'
            '<StudyName>&l9;</StudyName></GlobalVariables></Study></ODM>').encode()
    parsed = read_odm(data)
    assert len(parsed.entities) == 10 and parsed.subjects == []
