"""The TMF Reference Model as typed, validated, read-only data.

The model (zones → sections → artifacts, plus milestones) ships as CSV package data and is
loaded once per process with `load_reference_model()`. An artifact is keyed by its unique
id, which never changes between versions of the model; its number ("05.02.04") is a label.
"""

from __future__ import annotations

import csv
import enum
import functools
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

from etmf.reference_model.text import fold

DEFAULT_VERSION = "3.3.1"
_PACKAGE = __name__.rpartition(".")[0]  # the data lives beside this module
SUB_ARTIFACT_SEPARATOR = " | "

# What a correct data set of each shipped version contains; a mismatch means the CSVs were
# damaged or edited and the server must not start with them.
_EXPECTED_COUNTS: Mapping[str, Mapping[str, int]] = {
    "3.3.1": {"zones": 11, "sections": 48, "artifacts": 250, "milestones": 12},
}

_ARTIFACT_NUMBER = re.compile(r"^\d{2}\.\d{2}\.\d{2}$")
# Tolerated spellings of a number: "5.2.4", "05.02.04", "05-02-04", "05 02 04", "5.2".
_LOOSE_NUMBER = re.compile(
    r"^\s*(\d{1,2})(?:\s*[.\-/ ]\s*(\d{1,2}))?(?:\s*[.\-/ ]\s*(\d{1,2}))?\s*$"
)


class ReferenceModelError(Exception):
    """Base of every error raised by the reference model package."""


class ReferenceDataError(ReferenceModelError):
    """The shipped reference data is missing, malformed or inconsistent."""


class UnsupportedModelVersion(ReferenceModelError):
    """No data for the requested version of the TMF Reference Model ships with the server."""


class UnknownArtifact(ReferenceModelError, LookupError):
    """No artifact of the model has the given unique id or number."""


class UnknownSection(ReferenceModelError, LookupError):
    """No zone or section of the model has the given number."""


class UnknownMilestone(ReferenceModelError, LookupError):
    """No milestone of the model has the given code."""


class FilingLevel(enum.StrEnum):
    """Where in the TMF a document is filed: for the whole trial, a country, or one site."""

    TRIAL = "trial"
    COUNTRY = "country"
    SITE = "site"


@dataclass(frozen=True, slots=True)
class Zone:
    """A top level of the model, e.g. `05 Site Management`."""

    number: str
    name: str


@dataclass(frozen=True, slots=True)
class Section:
    """A section of a zone, e.g. `05.02 Site Set-up`."""

    number: str
    name: str
    zone_number: str


@dataclass(frozen=True, slots=True)
class Milestone:
    """A milestone of the trial by which artifacts are expected, e.g. `03 Site Live`."""

    code: str
    name: str
    phase: str


@dataclass(frozen=True, slots=True)
class Artifact:
    """One artifact (kind of record) of the model.

    `unique_id` is the stable key; `number` is a label that can change between versions.
    The document flags say whether the sponsor's and the investigator's files hold it, for
    medicinal-product trials and for device trials. `iis_requirement` is the model's
    Investigator-Initiated Study column (M mandatory, D dependent, R recommended).
    """

    unique_id: str
    number: str
    name: str
    zone_number: str
    section_number: str
    core: bool
    sponsor_document: bool
    investigator_document: bool
    device_sponsor_document: bool
    device_investigator_document: bool
    iis_requirement: str
    process_number: str
    dating_convention: str
    site_milestone_code: str | None
    definition: str
    sub_artifacts: tuple[str, ...]
    iso_14155_ref: str | None

    @property
    def label(self) -> str:
        """Number and name as people read them, e.g. `05.02.08 Form FDA 1572`."""
        return f"{self.number} {self.name}"


# Heuristic inputs of `ReferenceModel.levels_of`, kept here so they are easy to review.
_SITE_ZONES = frozenset({"04", "05"})  # IRB/IEC and Site Management
_COUNTRY_ZONES = frozenset({"03"})  # Regulatory
_SITE_ONLY_ZONES = frozenset({"05"})  # Site Management records are about one site
# Artifacts the rules get wrong, by unique id: a list of sites that were *not* selected
# has no site to be filed under.
_LEVEL_OVERRIDES: Mapping[str, tuple[FilingLevel, ...]] = {
    "083": (FilingLevel.TRIAL, FilingLevel.COUNTRY),
}


class ReferenceModel:
    """One version of the TMF Reference Model, read-only, with lookups by id and number.

    Build it with `load_reference_model()`; the constructor expects validated data.
    """

    def __init__(
        self,
        version: str,
        zones: Sequence[Zone],
        sections: Sequence[Section],
        milestones: Sequence[Milestone],
        artifacts: Sequence[Artifact],
    ) -> None:
        self.version = version
        self.zones: tuple[Zone, ...] = tuple(zones)
        self.sections: tuple[Section, ...] = tuple(sections)
        self.milestones: tuple[Milestone, ...] = tuple(milestones)
        self.artifacts: tuple[Artifact, ...] = tuple(artifacts)
        self._zones = {zone.number: zone for zone in self.zones}
        self._sections = {section.number: section for section in self.sections}
        self._milestones = {milestone.code: milestone for milestone in self.milestones}
        self._by_id = {artifact.unique_id: artifact for artifact in self.artifacts}
        self._by_number = {artifact.number: artifact for artifact in self.artifacts}
        self._by_section: dict[str, list[Artifact]] = {s.number: [] for s in self.sections}
        for artifact in self.artifacts:
            self._by_section[artifact.section_number].append(artifact)

    def __repr__(self) -> str:
        return f"<ReferenceModel {self.version}: {len(self.artifacts)} artifacts>"

    def artifact(self, unique_id: str) -> Artifact:
        """The artifact with this unique id ("091"; "91" is read as "091").

        Raises `UnknownArtifact` when the model has none.
        """
        key = unique_id.strip()
        if key.isdigit():
            key = key.zfill(3)
        try:
            return self._by_id[key]
        except KeyError:
            raise UnknownArtifact(
                f"The TMF Reference Model {self.version} has no artifact with unique id "
                f"{unique_id!r}."
            ) from None

    def artifact_by_number(self, number: str) -> Artifact:
        """The artifact with this number ("05.02.08"; "5.2.8" is tolerated).

        Raises `UnknownArtifact` when the model has none. Prefer unique ids for storage:
        numbers can change between versions of the model.
        """
        normalised = normalise_number(number)
        artifact = self._by_number.get(normalised) if normalised else None
        if artifact is None:
            raise UnknownArtifact(
                f"The TMF Reference Model {self.version} has no artifact numbered {number!r}."
            )
        return artifact

    def zone(self, number: str) -> Zone:
        """The zone with this number ("05" or "5"); raises `UnknownSection` if none."""
        zone = self._zones.get(normalise_number(number) or "")
        if zone is None:
            raise UnknownSection(
                f"The TMF Reference Model {self.version} has no zone numbered {number!r}."
            )
        return zone

    def section(self, number: str) -> Section:
        """The section with this number ("05.02" or "5.2"); raises `UnknownSection` if none."""
        section = self._sections.get(normalise_number(number) or "")
        if section is None:
            raise UnknownSection(
                f"The TMF Reference Model {self.version} has no section numbered {number!r}."
            )
        return section

    def milestone(self, code: str) -> Milestone:
        """The milestone with this code ("03"); raises `UnknownMilestone` if none."""
        milestone = self._milestones.get(code.strip().zfill(2))
        if milestone is None:
            raise UnknownMilestone(
                f"The TMF Reference Model {self.version} has no milestone with code {code!r}."
            )
        return milestone

    def sections_of(self, zone: Zone | str) -> tuple[Section, ...]:
        """The sections of a zone (given as a `Zone` or its number), in model order."""
        number = self.zone(zone.number if isinstance(zone, Zone) else zone).number
        return tuple(section for section in self.sections if section.zone_number == number)

    def artifacts_of(self, section: Section | str) -> tuple[Artifact, ...]:
        """The artifacts of a section (given as a `Section` or its number), in model order."""
        number = self.section(section.number if isinstance(section, Section) else section).number
        return tuple(self._by_section[number])

    def core_artifacts(self) -> tuple[Artifact, ...]:
        """The artifacts the model marks Core (the others are Recommended)."""
        return tuple(artifact for artifact in self.artifacts if artifact.core)

    def levels_of(self, artifact: Artifact | str) -> tuple[FilingLevel, ...]:
        """At which levels (trial, country, site) the artifact is normally filed.

        HEURISTIC. The public model has no trial-level or country-level flags, so this
        derives them from what it does have; a study's expected document list may override
        it. The rules, in order (an artifact can be filed at several levels):

        - site: the investigator files it (investigator flag, drug or device), or the model
          gives it a site milestone, or it is in zone 04 (IRB/IEC) or 05 (Site Management),
          or its definition speaks of the "site level";
        - country: it is in zone 03 (Regulatory), or its name or definition speaks of a
          country (country regulations, country templates, national coordinators);
        - trial: the sponsor files it (sponsor flag, drug or device), unless it is in zone
          05 (Site Management), whose records are about one site, or its definition speaks
          of the "trial level";
        - a short override table corrects artifacts the rules get wrong (05.01.05 Sites
          Evaluated but not Selected is trial and country level); anything left with no
          level is trial level.

        `artifact` is an `Artifact` or a unique id. Result in the order trial, country, site.
        """
        found = self.artifact(artifact if isinstance(artifact, str) else artifact.unique_id)
        override = _LEVEL_OVERRIDES.get(found.unique_id)
        if override is not None:
            return override
        definition = fold(found.definition)
        levels: list[FilingLevel] = []
        sponsor = found.sponsor_document or found.device_sponsor_document
        if (sponsor and found.zone_number not in _SITE_ONLY_ZONES) or "trial level" in definition:
            levels.append(FilingLevel.TRIAL)
        mentions_country = "countr" in fold(found.name) or "countr" in definition
        if found.zone_number in _COUNTRY_ZONES or mentions_country:
            levels.append(FilingLevel.COUNTRY)
        investigator = found.investigator_document or found.device_investigator_document
        if (
            investigator
            or found.site_milestone_code is not None
            or found.zone_number in _SITE_ZONES
            or "site level" in definition
        ):
            levels.append(FilingLevel.SITE)
        return tuple(levels) or (FilingLevel.TRIAL,)


def normalise_number(text: str) -> str | None:
    """Return a zone, section or artifact number in the model's spelling, or None.

    "5" → "05", "5.2" → "05.02", "5.2.1" / "05-02-01" → "05.02.01". Anything else → None.
    """
    match = _LOOSE_NUMBER.match(text)
    if match is None:
        return None
    return ".".join(part.zfill(2) for part in match.groups() if part is not None)


def load_reference_model(version: str = DEFAULT_VERSION) -> ReferenceModel:
    """Load, validate and return one version of the TMF Reference Model.

    Reads the CSVs shipped in this package's `data/` folder through importlib.resources (so
    it works from a wheel or a zip, not only from a source tree) and refuses inconsistent
    data with `ReferenceDataError`. Cached: every caller shares one read-only instance.
    """
    return _load_cached(version)


@functools.cache
def _load_cached(version: str) -> ReferenceModel:
    if version not in _EXPECTED_COUNTS:
        shipped = ", ".join(sorted(_EXPECTED_COUNTS))
        raise UnsupportedModelVersion(
            f"TMF Reference Model version {version!r} is not shipped with this server "
            f"(available: {shipped})."
        )
    return build_reference_model(
        version,
        sections_rows=_read_rows(f"tmf_rm_v{version}_sections.csv"),
        milestone_rows=_read_rows(f"tmf_rm_v{version}_milestones.csv"),
        artifact_rows=_read_rows(f"tmf_rm_v{version}_artifacts.csv"),
        definition_rows=_read_rows(f"tmf_rm_v{version}_definitions.csv"),
        expected_counts=_EXPECTED_COUNTS[version],
    )


def _read_rows(file_name: str) -> list[dict[str, str]]:
    resource = resources.files(_PACKAGE).joinpath("data").joinpath(file_name)
    try:
        text = resource.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReferenceDataError(
            f"Reference model data file {file_name} is missing from the installed package."
        ) from None
    return list(csv.DictReader(io.StringIO(text, newline="")))


def build_reference_model(
    version: str,
    *,
    sections_rows: Iterable[Mapping[str, str]],
    milestone_rows: Iterable[Mapping[str, str]],
    artifact_rows: Iterable[Mapping[str, str]],
    definition_rows: Iterable[Mapping[str, str]],
    expected_counts: Mapping[str, int] | None = None,
) -> ReferenceModel:
    """Build a `ReferenceModel` from CSV rows, checking that the data is consistent.

    Public so that tests (and a future model version's importer) can check rows that are
    not the shipped files. Raises `ReferenceDataError` naming the first inconsistency.
    """
    section_list = list(sections_rows)
    zones = _zones_from(section_list)
    sections = [_section_from(row) for row in section_list]
    milestones = [_milestone_from(row) for row in milestone_rows]
    definitions = _definitions_by_number(definition_rows)
    artifacts = [_artifact_from(row, definitions) for row in artifact_rows]
    _check_unique("artifact unique id", [artifact.unique_id for artifact in artifacts])
    _check_unique("artifact number", [artifact.number for artifact in artifacts])
    _check_unique("section number", [section.number for section in sections])
    _check_unique("milestone code", [milestone.code for milestone in milestones])
    _check_hierarchy(zones, sections, artifacts, section_list)
    _check_milestones(milestones, artifacts)
    _check_definitions_used(definitions, artifacts)
    if expected_counts is not None:
        _check_counts(
            expected_counts,
            {
                "zones": len(zones),
                "sections": len(sections),
                "artifacts": len(artifacts),
                "milestones": len(milestones),
            },
        )
    return ReferenceModel(version, zones, sections, milestones, artifacts)


def _field(row: Mapping[str, str], name: str) -> str:
    value = row.get(name)
    if value is None:
        raise ReferenceDataError(f"Reference model row {dict(row)!r} has no column {name!r}.")
    return value.strip()


def _yes_no(row: Mapping[str, str], name: str) -> bool:
    value = _field(row, name)
    if value not in ("Yes", "No"):
        raise ReferenceDataError(
            f"Column {name!r} of artifact {row.get('unique_id')!r} is {value!r}, not Yes or No."
        )
    return value == "Yes"


def _optional(value: str) -> str | None:
    return value or None


def _zones_from(section_rows: Sequence[Mapping[str, str]]) -> list[Zone]:
    zones: dict[str, Zone] = {}
    for row in section_rows:
        zone = Zone(_field(row, "zone_num"), _field(row, "zone_name"))
        known = zones.setdefault(zone.number, zone)
        if known != zone:
            raise ReferenceDataError(
                f"Zone {zone.number} is named both {known.name!r} and {zone.name!r}."
            )
    return list(zones.values())


def _section_from(row: Mapping[str, str]) -> Section:
    return Section(_field(row, "section_num"), _field(row, "section_name"), _field(row, "zone_num"))


def _milestone_from(row: Mapping[str, str]) -> Milestone:
    return Milestone(_field(row, "code"), _field(row, "name"), _field(row, "phase"))


def _definitions_by_number(rows: Iterable[Mapping[str, str]]) -> dict[str, Mapping[str, str]]:
    definitions: dict[str, Mapping[str, str]] = {}
    for row in rows:
        number = _field(row, "artifact_num")
        if number in definitions:
            raise ReferenceDataError(f"Artifact {number} has more than one definition row.")
        definitions[number] = row
    return definitions


def _split_sub_artifacts(joined: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in joined.split(SUB_ARTIFACT_SEPARATOR) if part.strip())


def _artifact_from(
    row: Mapping[str, str], definitions: Mapping[str, Mapping[str, str]]
) -> Artifact:
    number = _field(row, "artifact_num")
    name = _field(row, "artifact_name")
    definition_row = definitions.get(number)
    if definition_row is None:
        raise ReferenceDataError(f"Artifact {number} {name} has no definition row.")
    if _field(definition_row, "artifact_name") != name:
        raise ReferenceDataError(
            f"Artifact {number} is named {name!r} but its definition row says "
            f"{_field(definition_row, 'artifact_name')!r}."
        )
    core = _field(row, "core_or_recommended")
    if core not in ("Core", "Recommended"):
        raise ReferenceDataError(f"Artifact {number} is {core!r}, not Core or Recommended.")
    iis = _field(row, "iis_requirement")
    if iis not in ("M", "D", "R"):
        raise ReferenceDataError(f"Artifact {number} has IIS requirement {iis!r}, not M, D or R.")
    return Artifact(
        unique_id=_field(row, "unique_id"),
        number=number,
        name=name,
        zone_number=_field(row, "zone_num"),
        section_number=_field(row, "section_num"),
        core=core == "Core",
        sponsor_document=_yes_no(row, "sponsor_document"),
        investigator_document=_yes_no(row, "investigator_document"),
        device_sponsor_document=_yes_no(row, "device_sponsor_document"),
        device_investigator_document=_yes_no(row, "device_investigator_document"),
        iis_requirement=iis,
        process_number=_field(row, "process_number"),
        dating_convention=_field(row, "dating_convention"),
        site_milestone_code=_optional(_field(row, "site_milestone_code")),
        definition=_field(definition_row, "definition"),
        sub_artifacts=_split_sub_artifacts(_field(definition_row, "sub_artifacts")),
        iso_14155_ref=_optional(_field(row, "iso_14155_ref")),
    )


def _check_unique(what: str, values: Sequence[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ReferenceDataError(f"The reference data repeats {what} {value!r}.")
        seen.add(value)


def _check_hierarchy(
    zones: Sequence[Zone],
    sections: Sequence[Section],
    artifacts: Sequence[Artifact],
    section_rows: Sequence[Mapping[str, str]],
) -> None:
    zone_numbers = {zone.number for zone in zones}
    by_number = {section.number: section for section in sections}
    for each in sections:
        if not each.number.startswith(each.zone_number + ".") or len(each.number) != 5:
            raise ReferenceDataError(
                f"Section {each.number} does not belong to its zone {each.zone_number}."
            )
    for artifact in artifacts:
        if not _ARTIFACT_NUMBER.match(artifact.number):
            raise ReferenceDataError(f"Artifact number {artifact.number!r} is not ZZ.SS.AA.")
        section = by_number.get(artifact.section_number)
        if section is None:
            raise ReferenceDataError(
                f"Artifact {artifact.number} {artifact.name} is in section "
                f"{artifact.section_number}, which the model does not have."
            )
        if artifact.zone_number not in zone_numbers or section.zone_number != artifact.zone_number:
            raise ReferenceDataError(
                f"Artifact {artifact.number} says zone {artifact.zone_number}, but its section "
                f"{section.number} is in zone {section.zone_number}."
            )
        if not artifact.number.startswith(section.number + "."):
            raise ReferenceDataError(
                f"Artifact {artifact.number} is filed in section {section.number}, "
                "but its number says otherwise."
            )
    counts = {section.number: 0 for section in sections}
    for artifact in artifacts:
        counts[artifact.section_number] += 1
    for row in section_rows:
        number, expected = _field(row, "section_num"), _field(row, "artifact_count")
        if str(counts[number]) != expected:
            raise ReferenceDataError(
                f"Section {number} should hold {expected} artifacts but holds {counts[number]}."
            )


def _check_milestones(milestones: Sequence[Milestone], artifacts: Sequence[Artifact]) -> None:
    codes = {milestone.code for milestone in milestones}
    for artifact in artifacts:
        if artifact.site_milestone_code is not None and artifact.site_milestone_code not in codes:
            raise ReferenceDataError(
                f"Artifact {artifact.number} refers to milestone {artifact.site_milestone_code}, "
                "which the model does not have."
            )


def _check_definitions_used(
    definitions: Mapping[str, Mapping[str, str]], artifacts: Sequence[Artifact]
) -> None:
    unused = set(definitions) - {artifact.number for artifact in artifacts}
    if unused:
        raise ReferenceDataError(
            f"Definition rows for artifacts the model does not have: {', '.join(sorted(unused))}."
        )


def _check_counts(expected: Mapping[str, int], actual: Mapping[str, int]) -> None:
    for what, count in expected.items():
        if actual.get(what) != count:
            raise ReferenceDataError(
                f"The reference data has {actual.get(what)} {what}; this version has {count}."
            )
