"""The TMF Reference Model 3.3.1 loads complete, consistent and looks artifacts up reliably."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

import etmf.reference_model
from etmf.reference_model import (
    FilingLevel,
    ReferenceDataError,
    ReferenceModel,
    UnknownArtifact,
    UnknownSection,
    UnsupportedModelVersion,
    load_reference_model,
    normalise_number,
)
from etmf.reference_model.model import build_reference_model

PACKAGE_DIR = Path(etmf.reference_model.__file__).parent


@pytest.fixture(scope="module")
def model() -> ReferenceModel:
    return load_reference_model()


def _rows(file_name: str) -> list[dict[str, str]]:
    text = resources.files("etmf.reference_model").joinpath("data").joinpath(file_name)
    return list(csv.DictReader(io.StringIO(text.read_text(encoding="utf-8"), newline="")))


def _build(**overrides: list[dict[str, str]]) -> ReferenceModel:
    rows = {
        "sections_rows": _rows("tmf_rm_v3.3.1_sections.csv"),
        "milestone_rows": _rows("tmf_rm_v3.3.1_milestones.csv"),
        "artifact_rows": _rows("tmf_rm_v3.3.1_artifacts.csv"),
        "definition_rows": _rows("tmf_rm_v3.3.1_definitions.csv"),
    }
    rows.update(overrides)
    return build_reference_model(
        "3.3.1",
        expected_counts={"zones": 11, "sections": 48, "artifacts": 250, "milestones": 12},
        **rows,
    )


def test_model_has_the_published_counts(model: ReferenceModel) -> None:
    assert model.version == "3.3.1"
    assert (len(model.zones), len(model.sections), len(model.artifacts)) == (11, 48, 250)
    assert len(model.milestones) == 12


def test_every_artifact_has_its_definition_and_sub_artifacts(model: ReferenceModel) -> None:
    assert all(artifact.definition for artifact in model.artifacts)
    assert all(artifact.sub_artifacts for artifact in model.artifacts)
    assert sum(len(artifact.sub_artifacts) for artifact in model.artifacts) == 624


def test_sub_artifacts_are_split_into_separate_names(model: ReferenceModel) -> None:
    site_signature_sheet = model.artifact("101")
    assert site_signature_sheet.sub_artifacts == (
        "Delegation of Authority Log",
        "Site Signature Sheet",
    )


def test_artifact_is_found_by_its_unique_id(model: ReferenceModel) -> None:
    form_1572 = model.artifact("091")
    assert (form_1572.number, form_1572.name) == ("05.02.08", "Form FDA 1572")
    assert form_1572.label == "05.02.08 Form FDA 1572"
    assert form_1572.core and form_1572.sponsor_document and form_1572.investigator_document
    assert form_1572.site_milestone_code == "03"
    assert model.artifact("91") is form_1572


def test_artifact_fields_are_typed_from_the_csv(model: ReferenceModel) -> None:
    protocol = model.artifact_by_number("02.01.02")
    assert protocol.unique_id == "032"
    assert (protocol.zone_number, protocol.section_number) == ("02", "02.01")
    assert protocol.iis_requirement == "M" and protocol.process_number == "2"
    assert model.milestone(protocol.site_milestone_code or "").name == "First Country RA Approval"
    assert model.artifact("001").iso_14155_ref is None
    assert model.artifact("001").site_milestone_code is None


@pytest.mark.parametrize("number", ["05.02.08", "5.2.8", "05-02-08", " 5 2 8 "])
def test_artifact_is_found_by_its_number_in_any_usual_spelling(
    model: ReferenceModel, number: str
) -> None:
    assert model.artifact_by_number(number).unique_id == "091"


@pytest.mark.parametrize("unique_id", ["999", "abc", ""])
def test_unknown_unique_id_is_refused_with_a_clear_error(
    model: ReferenceModel, unique_id: str
) -> None:
    with pytest.raises(UnknownArtifact, match="has no artifact with unique id"):
        model.artifact(unique_id)


def test_unknown_artifact_number_is_refused_with_a_clear_error(model: ReferenceModel) -> None:
    # 02.01.08 was removed from the model; its number must not resolve to anything.
    with pytest.raises(UnknownArtifact, match="no artifact numbered '02.01.08'"):
        model.artifact_by_number("02.01.08")
    with pytest.raises(LookupError):
        model.artifact_by_number("not a number")


def test_sections_of_a_zone_are_listed_in_model_order(model: ReferenceModel) -> None:
    sections = model.sections_of("05")
    assert [section.number for section in sections] == [f"05.0{i}" for i in range(1, 6)]
    assert model.sections_of(model.zone("5")) == sections
    with pytest.raises(UnknownSection):
        model.sections_of("12")


def test_artifacts_of_a_section_match_the_published_count(model: ReferenceModel) -> None:
    site_set_up = model.artifacts_of("05.02")
    assert len(site_set_up) == 18
    assert site_set_up[0].name == "Acceptance of Investigator Brochure"
    assert model.artifacts_of(model.section("5.2")) == site_set_up


def test_core_artifacts_are_the_ones_marked_core(model: ReferenceModel) -> None:
    core = model.core_artifacts()
    assert 0 < len(core) < 250
    assert model.artifact("091") in core
    assert model.artifact("001") not in core  # Trial Master File Plan is Recommended


@pytest.mark.parametrize(
    ("unique_id", "levels"),
    [
        ("001", (FilingLevel.TRIAL,)),  # Trial Master File Plan: sponsor only
        ("087", (FilingLevel.SITE,)),  # Principal Investigator CV: site management
        ("032", (FilingLevel.TRIAL, FilingLevel.SITE)),  # Protocol: both files
        ("052", (FilingLevel.TRIAL, FilingLevel.COUNTRY)),  # Regulatory Submission
        ("066", (FilingLevel.TRIAL, FilingLevel.SITE)),  # IRB or IEC Decision
        ("083", (FilingLevel.TRIAL, FilingLevel.COUNTRY)),  # Sites Evaluated but not Selected
    ],
)
def test_filing_levels_follow_the_documented_heuristic(
    model: ReferenceModel, unique_id: str, levels: tuple[FilingLevel, ...]
) -> None:
    assert model.levels_of(unique_id) == levels
    assert model.levels_of(model.artifact(unique_id)) == levels


def test_every_artifact_has_at_least_one_filing_level(model: ReferenceModel) -> None:
    assert all(model.levels_of(artifact) for artifact in model.artifacts)


def test_loading_twice_returns_the_same_read_only_model() -> None:
    assert load_reference_model() is load_reference_model("3.3.1")


def test_unshipped_version_is_refused_naming_the_available_ones() -> None:
    with pytest.raises(UnsupportedModelVersion, match=r"'4\.0' is not shipped.*3\.3\.1"):
        load_reference_model("4.0")


def test_artifact_in_a_missing_section_is_refused() -> None:
    artifacts = _rows("tmf_rm_v3.3.1_artifacts.csv")
    artifacts[0] = {**artifacts[0], "section_num": "01.09"}
    with pytest.raises(ReferenceDataError, match="section 01.09, which the model does not have"):
        _build(artifact_rows=artifacts)


def test_artifact_number_outside_its_section_is_refused() -> None:
    artifacts = _rows("tmf_rm_v3.3.1_artifacts.csv")
    artifacts[0] = {**artifacts[0], "artifact_num": "01.02.99"}
    with pytest.raises(ReferenceDataError):
        _build(artifact_rows=artifacts)


def test_missing_artifact_is_refused_by_the_count_check() -> None:
    artifacts = _rows("tmf_rm_v3.3.1_artifacts.csv")
    with pytest.raises(ReferenceDataError, match="Section 01.01 should hold 20 artifacts"):
        _build(artifact_rows=artifacts[1:])


def test_definition_with_a_different_name_is_refused() -> None:
    definitions = _rows("tmf_rm_v3.3.1_definitions.csv")
    definitions[0] = {**definitions[0], "artifact_name": "Something Else"}
    with pytest.raises(ReferenceDataError, match="its definition row says 'Something Else'"):
        _build(definition_rows=definitions)


def test_unknown_milestone_reference_is_refused() -> None:
    milestones = _rows("tmf_rm_v3.3.1_milestones.csv")
    with pytest.raises(ReferenceDataError, match="refers to milestone 03"):
        _build(milestone_rows=[row for row in milestones if row["code"] != "03"])


def test_yes_no_flag_with_another_value_is_refused() -> None:
    artifacts = _rows("tmf_rm_v3.3.1_artifacts.csv")
    artifacts[5] = {**artifacts[5], "sponsor_document": "Maybe"}
    with pytest.raises(ReferenceDataError, match="'Maybe', not Yes or No"):
        _build(artifact_rows=artifacts)


@pytest.mark.parametrize(
    ("typed", "number"),
    [("5", "05"), ("5.2", "05.02"), ("05.02.01", "05.02.01"), ("5-2-1", "05.02.01"), ("x", None)],
)
def test_numbers_are_normalised_to_the_model_spelling(typed: str, number: str | None) -> None:
    assert normalise_number(typed) == number


def test_package_data_ships_schema_example_and_source_note() -> None:
    data = resources.files("etmf.reference_model").joinpath("data")
    xsd = data.joinpath("TmfReferenceModelExchange.xsd").read_text(encoding="utf-8")
    assert 'targetNamespace="https://tmfrefmodel.com/ems"' in xsd
    example = data.joinpath("ems_example_exchange.xml").read_text(encoding="utf-8")
    assert "<UNIQUEID>091</UNIQUEID>" in example
    assert "public domain" in data.joinpath("SOURCE.md").read_text(encoding="utf-8").lower()


def test_model_loads_from_a_zipped_package_through_importlib_resources(tmp_path: Path) -> None:
    """The loader must not rely on files on disk: a zip import is stricter than a wheel."""
    archive = tmp_path / "etmf.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("etmf/__init__.py", "")
        for path in PACKAGE_DIR.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zipped.write(path, f"etmf/reference_model/{path.relative_to(PACKAGE_DIR)}")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "import etmf.reference_model as rm; m = rm.load_reference_model();"
        "print(rm.__file__.startswith(sys.argv[1]), len(m.zones), len(m.sections),"
        " len(m.artifacts), len(m.milestones), m.artifact('091').name)"
    )
    # -I -S: no site-packages and no PYTHONPATH, so the editable install cannot be used.
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script, str(archive)],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.stdout.split() == ["True", "11", "48", "250", "12", "Form", "FDA", "1572"]
