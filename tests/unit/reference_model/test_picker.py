"""The filing form's artifact picker finds what people type, best match first."""

from __future__ import annotations

import pytest

from etmf.reference_model import (
    ArtifactMatch,
    MatchField,
    ReferenceModel,
    load_reference_model,
    search_artifacts,
)


@pytest.fixture(scope="module")
def model() -> ReferenceModel:
    return load_reference_model()


def _ids(matches: list[ArtifactMatch]) -> list[str]:
    return [match.artifact.unique_id for match in matches]


def test_exact_name_comes_first_and_says_it_matched_the_name(model: ReferenceModel) -> None:
    first = search_artifacts(model, "Form FDA 1572")[0]
    assert first.artifact.unique_id == "091"
    assert first.field is MatchField.NAME
    assert first.matched_text == "Form FDA 1572"


@pytest.mark.parametrize("typed", ["05.02.08", "5.2.8", "05-02-08"])
def test_artifact_number_in_any_usual_spelling_finds_that_artifact(
    model: ReferenceModel, typed: str
) -> None:
    matches = search_artifacts(model, typed)
    assert _ids(matches) == ["091"]
    assert matches[0].field is MatchField.NUMBER and matches[0].score == 100


@pytest.mark.parametrize("typed", ["05.02", "5.2"])
def test_section_number_lists_the_section_in_model_order(model: ReferenceModel, typed: str) -> None:
    matches = search_artifacts(model, typed, limit=50)
    assert [match.artifact for match in matches] == list(model.artifacts_of("05.02"))
    assert {match.field for match in matches} == {MatchField.SECTION}


def test_zone_number_lists_the_zone(model: ReferenceModel) -> None:
    matches = search_artifacts(model, "5", limit=250)
    assert {match.artifact.zone_number for match in matches} == {"05"}
    assert len(matches) == sum(len(model.artifacts_of(s)) for s in model.sections_of("05"))


def test_unique_id_finds_that_artifact(model: ReferenceModel) -> None:
    matches = search_artifacts(model, "091")
    assert _ids(matches) == ["091"] and matches[0].field is MatchField.UNIQUE_ID


def test_pasted_label_puts_its_artifact_first(model: ReferenceModel) -> None:
    assert _ids(search_artifacts(model, "05.02.08 Form FDA 1572"))[0] == "091"


def test_sub_artifact_name_finds_its_artifact_and_says_which_sub_artifact(
    model: ReferenceModel,
) -> None:
    first = search_artifacts(model, "delegation of authority log")[0]
    assert first.artifact.name == "Site Signature Sheet"
    assert first.field is MatchField.SUB_ARTIFACT
    assert first.matched_text == "Delegation of Authority Log"


def test_sub_artifact_words_find_every_artifact_holding_them(model: ReferenceModel) -> None:
    matches = search_artifacts(model, "biographical sketch")
    assert set(_ids(matches[:3])) == {"087", "088", "089"}  # PI, Sub-I and Other CVs
    assert all(match.field is MatchField.SUB_ARTIFACT for match in matches[:3])


def test_search_ignores_case_and_accents(model: ReferenceModel) -> None:
    plain = search_artifacts(model, "curriculum vitae")
    assert search_artifacts(model, "CURRICULUM VITÆ") == plain
    assert search_artifacts(model, "Investigator’s Brochure")[0].artifact.unique_id == "031"


@pytest.mark.parametrize(
    ("abbreviation", "unique_id"),
    [("ICF", "040"), ("ib", "031"), ("SAE", "153")],
)
def test_common_abbreviations_find_their_artifact_first(
    model: ReferenceModel, abbreviation: str, unique_id: str
) -> None:
    assert _ids(search_artifacts(model, abbreviation))[0] == unique_id


def test_cv_lists_the_curriculum_vitae_artifacts(model: ReferenceModel) -> None:
    matches = search_artifacts(model, "cv", limit=7)
    assert all("Curriculum Vitae" in match.artifact.name for match in matches)
    assert {"087", "088", "017"} <= set(_ids(matches))


def test_name_and_sub_artifact_matches_rank_above_definition_matches(
    model: ReferenceModel,
) -> None:
    matches = search_artifacts(model, "temperature", limit=50)
    fields = [match.field for match in matches]
    assert fields[0] is MatchField.SUB_ARTIFACT
    assert MatchField.DEFINITION in fields
    last_named = max(i for i, f in enumerate(fields) if f is not MatchField.DEFINITION)
    first_definition = fields.index(MatchField.DEFINITION)
    assert last_named < first_definition


def test_word_only_in_a_definition_is_still_found(model: ReferenceModel) -> None:
    matches = search_artifacts(model, "whilst")
    assert _ids(matches) == ["154"]  # Pregnancy Report: "... whilst ... participating"
    assert matches[0].field is MatchField.DEFINITION


def test_partly_typed_word_matches_as_a_prefix(model: ReferenceModel) -> None:
    assert _ids(search_artifacts(model, "normal ran"))[0] == "163"


def test_all_words_matching_beat_some_words_matching(model: ReferenceModel) -> None:
    matches = search_artifacts(model, "irb approval")
    assert matches[0].artifact.unique_id == "066"
    assert matches[0].matched_text == "IRB or IEC Approval"


def test_results_are_limited_and_ordered_best_first(model: ReferenceModel) -> None:
    matches = search_artifacts(model, "report", limit=5)
    assert len(matches) == 5
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)


@pytest.mark.parametrize("query", ["", "   ", "xyzzy", "02.01.08", "999"])
def test_nothing_matching_returns_no_results(model: ReferenceModel, query: str) -> None:
    assert search_artifacts(model, query) == []
