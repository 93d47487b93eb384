"""The eTMF Exchange Mechanism Standard (EMS) manifest: schema, safe parsing, checksums.

The XSD and the working group's example are package data of the reference model
(``etmf/reference_model/data/``, sources named in its SOURCE.md). Dates in the manifest are
``DD-MMM-YYYY``; countries ISO 3166 alpha-3; ``INTEGRITY`` is written ``SHA256-<hex>`` (as
the example does) and read in any of the encodings met in the field (hex or base64, with or
without a ``SHA256-``/``sha256-`` prefix).
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import date, datetime
from functools import lru_cache
from importlib import resources

from lxml import etree

NS = "https://tmfrefmodel.com/ems"
Q = "{" + NS + "}"
MANIFEST_NAME = "exchange.xml"
SPECIFICATION_ID = "eTMF-EMS-1.0.2"
#: A manifest larger than this is refused before parsing (about 2 KB per object: 250k).
MAX_MANIFEST_BYTES = 1024 * 1024 * 1024

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")

#: ISO 3166 alpha-2 → alpha-3 for the countries trials run in most; others go as METADATA.
ALPHA3 = {
    "AR": "ARG", "AT": "AUT", "AU": "AUS", "BE": "BEL", "BG": "BGR", "BR": "BRA",
    "CA": "CAN", "CH": "CHE", "CL": "CHL", "CN": "CHN", "CO": "COL", "CY": "CYP",
    "CZ": "CZE", "DE": "DEU", "DK": "DNK", "EE": "EST", "EG": "EGY", "ES": "ESP",
    "FI": "FIN", "FR": "FRA", "GB": "GBR", "GE": "GEO", "GR": "GRC", "HK": "HKG",
    "HR": "HRV", "HU": "HUN", "IE": "IRL", "IL": "ISR", "IN": "IND", "IS": "ISL",
    "IT": "ITA", "JP": "JPN", "KR": "KOR", "LT": "LTU", "LU": "LUX", "LV": "LVA",
    "MT": "MLT", "MX": "MEX", "MY": "MYS", "NL": "NLD", "NO": "NOR", "NZ": "NZL",
    "PE": "PER", "PH": "PHL", "PL": "POL", "PT": "PRT", "RO": "ROU", "RS": "SRB",
    "RU": "RUS", "SA": "SAU", "SE": "SWE", "SG": "SGP", "SI": "SVN", "SK": "SVK",
    "TH": "THA", "TR": "TUR", "TW": "TWN", "UA": "UKR", "US": "USA", "ZA": "ZAF",
}
ALPHA2 = {v: k for k, v in ALPHA3.items()}


class ManifestError(ValueError):
    """The manifest cannot be read at all (not XML, too large, wrong root)."""


@lru_cache(maxsize=1)
def schema() -> etree.XMLSchema:
    data = resources.files("etmf.reference_model").joinpath(
        "data/TmfReferenceModelExchange.xsd").read_bytes()
    return etree.XMLSchema(etree.fromstring(data, parser=safe_parser()))


def safe_parser() -> etree.XMLParser:
    """No entities, no DTD, no network: the manifest comes from outside."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                           dtd_validation=False, huge_tree=False, remove_comments=True)


def parse_manifest(data: bytes) -> etree._Element:
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST_BYTES} bytes.")
    try:
        root = etree.fromstring(data, parser=safe_parser())
    except etree.XMLSyntaxError as exc:
        raise ManifestError(f"{MANIFEST_NAME} is not well-formed XML: {exc}") from None
    if root.tag != Q + "BATCH":
        raise ManifestError(f"{MANIFEST_NAME} is not an EMS manifest: its root element is "
                            f"{etree.QName(root).localname!r}, not BATCH in {NS}.")
    return root


def schema_errors(root: etree._Element, limit: int = 50) -> list[str]:
    """The XSD's complaints, one readable line each (line number first)."""
    xsd = schema()
    if xsd.validate(root):
        return []
    return [f"line {e.line}: {e.message}" for e in list(xsd.error_log)[:limit]]


def ems_date(value: date | None) -> str | None:
    return None if value is None else f"{value.day:02d}-{_MONTHS[value.month - 1]}-{value.year}"


def parse_ems_date(text: str | None) -> date | None:
    if not text:
        return None
    match = re.fullmatch(r"(\d{2})-([A-Za-z]{3})-(\d{4})", text.strip())
    if not match or match.group(2).upper() not in _MONTHS:
        return None
    try:
        return date(int(match.group(3)), _MONTHS.index(match.group(2).upper()) + 1,
                    int(match.group(1)))
    except ValueError:
        return None


def ems_datetime(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def integrity(sha256_hex: str) -> str:
    return "SHA256-" + sha256_hex


def parse_integrity(text: str) -> str | None:
    """The SHA-256 as 64 lowercase hex digits, or None if ``text`` is no SHA-256 at all.

    Accepts ``<hex>``, ``<base64>``, each optionally prefixed ``SHA256-``/``sha256-``
    (SRI style) or ``SHA256:``.
    """
    value = text.strip()
    match = re.match(r"(?i)sha-?256[-:]", value)
    if match:
        value = value[match.end():]
    if re.fullmatch(r"[0-9a-fA-F]{64}", value):
        return value.lower()
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            return None
    return raw.hex() if len(raw) == 32 else None


def text_of(element: etree._Element, name: str) -> str | None:
    child = element.find(Q + name)
    return None if child is None or child.text is None else child.text.strip()


def texts_of(element: etree._Element, name: str) -> list[str]:
    return [c.text.strip() for c in element.findall(Q + name) if c.text and c.text.strip()]


def metadata_of(element: etree._Element) -> dict[str, str]:
    return {m.get("NAME", ""): (m.text or "") for m in element.findall(Q + "METADATA")}
