"""Reading CDISC ODM 1.3 clinical data as REDCap, OpenClinica and other EDCs export it.

What we read: ``ClinicalData/SubjectData[@SubjectKey]/StudyEventData[@StudyEventOID]`` with
the event's date (an ``ItemData`` whose ``ItemOID`` names a visit date, or a vendor
``…StartDate`` attribute on the event), and subject-level dates that move a subject's status
(enrollment, screen failure, completion, discontinuation, with a reason item).

Safety (DESIGN invariant 5): the size is checked before parsing; the file is parsed by
defusedxml with DTDs forbidden. A file that declares a DTD or entities (an XML external
entity attack, an entity bomb) is parsed a second time by expat with every entity left
unexpanded — internal ones are not expanded (a default handler is set), external ones are
neither fetched nor read, parameter entities are never parsed — and each declaration is
reported. No network and no file access happens in either pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from xml.etree import ElementTree as ET
from xml.parsers import expat

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from etmf.errors import ValidationError

MAX_BYTES = 20 * 1024 * 1024
ODM_NS = "http://www.cdisc.org/ns/odm/v1.3"

#: ItemOIDs (upper case, without a form prefix) that carry a visit's date.
VISIT_DATE_ITEMS = frozenset({"VISIT_DATE", "VISITDATE", "VISDAT", "VISDT", "SVSTDTC",
                              "VIS_DATE", "DATE_OF_VISIT"})
#: Subject-level ItemOIDs → the status their date puts the subject in.
STATUS_ITEMS = {"ENROLLMENT_DATE": "enrolled", "ENROLL_DATE": "enrolled", "ENRDAT": "enrolled",
                "SCREEN_FAIL_DATE": "screen_failed", "SFDAT": "screen_failed",
                "COMPLETION_DATE": "completed", "EOS_DATE": "completed",
                "DISCONTINUATION_DATE": "discontinued", "DSSTDTC": "discontinued"}
REASON_ITEMS = frozenset({"SCREEN_FAIL_REASON", "DISCONTINUATION_REASON", "DSTERM",
                          "END_REASON"})
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


@dataclass
class EventRecord:
    subject_key: str
    event_oid: str
    event_name: str  # REDCap's unique event name, or the OID
    repeat: str
    date_text: str | None  # as found (maybe malformed), None if absent


@dataclass
class StatusRecord:
    subject_key: str
    status: str
    item_oid: str
    date_text: str
    reason: str | None


@dataclass
class OdmData:
    study_oid: str | None = None
    event_names: dict[str, str] = field(default_factory=dict)  # StudyEventDef OID → Name
    subjects: list[str] = field(default_factory=list)
    events: list[EventRecord] = field(default_factory=list)
    statuses: list[StatusRecord] = field(default_factory=list)
    entities: list[str] = field(default_factory=list)  # declarations left unresolved


def parse_date(text: str | None) -> date | None:
    """An ISO 8601 date (a datetime's date part); None if malformed."""
    if not text or not _DATE.match(text.strip()):
        return None
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        return None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _item_key(oid: str) -> str:
    """``"VS.VISDAT"`` or ``"visit_date"`` → ``"VISDAT"`` / ``"VISIT_DATE"``."""
    return oid.rsplit(".", 1)[-1].upper()


class _InertTreeBuilder:
    """Expat straight into an ElementTree, every entity left unexpanded and recorded."""

    def __init__(self) -> None:
        self.builder = ET.TreeBuilder()
        self.entities: list[str] = []
        p = expat.ParserCreate(namespace_separator="}")
        p.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        p.StartElementHandler = self._start
        p.EndElementHandler = lambda name: self.builder.end(self._name(name))
        p.CharacterDataHandler = self.builder.data
        p.EntityDeclHandler = self._entity_decl
        # A default handler stops expat from expanding internal entities; references to
        # them arrive here as text like "&name;" and are dropped.
        p.DefaultHandler = lambda _text: None
        p.ExternalEntityRefHandler = self._external_ref
        self.parser = p

    @staticmethod
    def _name(name: str) -> str:
        return "{" + name if "}" in name else name

    def _start(self, name: str, attrs: dict[str, str]) -> None:
        self.builder.start(self._name(name), {self._name(k): v for k, v in attrs.items()})

    def _entity_decl(self, name, is_param, value, base, system_id, public_id, notation  # type: ignore[no-untyped-def]
                     ) -> None:
        where = f"SYSTEM {system_id!r}" if system_id else f"value {str(value)[:40]!r}"
        self.entities.append(f"{'parameter ' if is_param else ''}entity {name!r} ({where})")

    def _external_ref(self, context, base, system_id, public_id) -> int:  # type: ignore[no-untyped-def]
        return 1  # "handled": nothing is fetched, the reference expands to nothing

    def parse(self, data: bytes) -> ET.Element:
        self.parser.Parse(data, True)
        return self.builder.close()


def _parse_xml(data: bytes) -> tuple[ET.Element, list[str]]:
    try:
        return DET.fromstring(data, forbid_dtd=True), []
    except DefusedXmlException:
        pass  # a DTD or entities: parse again with every entity inert, and report them
    except ET.ParseError as exc:
        raise ValidationError(f"The file is not well-formed XML: {exc}.") from None
    inert = _InertTreeBuilder()
    try:
        root = inert.parse(data)
    except expat.ExpatError as exc:
        raise ValidationError(f"The file is not well-formed XML: {exc}.") from None
    return root, inert.entities or ["a document type declaration (DTD)"]


def read_odm(data: bytes) -> OdmData:
    """Parse an ODM 1.3 export; :class:`ValidationError` if it is not one at all."""
    if len(data) > MAX_BYTES:
        raise ValidationError(f"The ODM file is {len(data) // (1024 * 1024)} MB; at most "
                              f"{MAX_BYTES // (1024 * 1024)} MB can be imported at once.")
    if not data.strip():
        raise ValidationError("The ODM file is empty.")
    root, entities = _parse_xml(data)
    if _local(root.tag) != "ODM":
        raise ValidationError("This is XML but not a CDISC ODM file (its root is "
                              f"<{_local(root.tag)}>, not <ODM>).")
    out = OdmData(entities=entities)
    for el in root.iter():
        name = _local(el.tag)
        if name == "StudyEventDef" and el.get("OID"):
            out.event_names[el.get("OID", "")] = el.get("Name", "")
        elif name == "ClinicalData":
            out.study_oid = out.study_oid or el.get("StudyOID")
    for subject in root.iter(f"{{{ODM_NS}}}SubjectData"):
        _read_subject(subject, out)
    if not out.study_oid and not out.subjects:
        for subject in root.iter("SubjectData"):  # files without the ODM namespace
            _read_subject(subject, out)
    return out


def _items(el: ET.Element) -> list[tuple[str, str]]:
    return [(it.get("ItemOID", ""), it.get("Value", "")) for it in el.iter()
            if _local(it.tag) == "ItemData"]


def _read_subject(subject: ET.Element, out: OdmData) -> None:
    key = (subject.get("SubjectKey") or "").strip()
    out.subjects.append(key)
    reason = None
    statuses = []
    for child in subject:
        if _local(child.tag) != "StudyEventData":
            continue
        oid = child.get("StudyEventOID", "")
        unique = next((v for k, v in child.attrib.items() if _local(k) == "UniqueEventName"),
                      None)
        date_text = next((v for k, v in child.attrib.items()
                          if _local(k).endswith("StartDate")), None)
        for item_oid, value in _items(child):
            k = _item_key(item_oid)
            if k in VISIT_DATE_ITEMS and date_text is None:
                date_text = value
            elif k in STATUS_ITEMS and value.strip():
                statuses.append(StatusRecord(key, STATUS_ITEMS[k], item_oid, value, None))
            elif k in REASON_ITEMS and value.strip():
                reason = value.strip()[:500]
        out.events.append(EventRecord(key, oid, unique or oid, child.get("StudyEventRepeatKey",
                                                                           "1"), date_text))
    for s in statuses:
        if s.status in ("screen_failed", "discontinued"):
            s.reason = reason
        out.statuses.append(s)
