"""Filing suggestions put the right artifact in front of the person filing, with honest confidence.

Expected artifacts are unique ids from tmf_rm_v3.3.1_artifacts.csv.
"""

from __future__ import annotations

import pytest

from etmf.reference_model import (
    Classifier,
    ClassifierError,
    ReferenceModel,
    UnknownArtifact,
    load_reference_model,
)
from etmf.reference_model.text import file_name_text

# The dozen realistic files of the quality check: (file name, text, expected unique id).
QUALITY_CASES = [
    ("Curriculum_Vitae_Dr_Smith.pdf", "", "087"),  # Principal Investigator Curriculum Vitae
    ("Signed informed consent form v2 site 101.pdf", "", "040"),  # Informed Consent Form
    ("Investigator Brochure edition 7.pdf", "", "031"),  # Investigator's Brochure
    ("IRB approval letter.pdf", "", "066"),  # IRB or IEC Decision
    ("Monitoring visit report 3.pdf", "", "107"),  # Monitoring Visit Report
    ("GCP training certificate.pdf", "", "090"),  # Site Staff Qualification Supporting Info
    ("Laboratory normal ranges.pdf", "", "163"),  # Normal Ranges
    ("Form FDA 1572.pdf", "", "091"),  # Form FDA 1572
    ("Delegation_of_Authority_Log_Site_204.pdf", "", "101"),  # Site Signature Sheet
    ("SAE_report_subject_1001.pdf", "", "153"),  # SAE Report
    ("Protocol_Amendment_2_signature_page.pdf", "", "086"),  # Protocol Amendment Sig. Page
    ("DSUR_2023.pdf", "", "151"),  # Pharmacovigilance Database Line Listing (DSUR sub-artifact)
]

# More realistic files, used with the dozen above to check that confidence is honest.
CALIBRATION_CASES = [
    ("CV_Jane_Doe_2024.pdf", "", "087"),
    ("Statistical Analysis Plan v1.0.docx", "", "209"),
    ("Data Management Plan final.docx", "", "186"),
    ("IP_Certificate_of_Destruction_site_12.pdf", "", "128"),
    ("Temperature_log_pharmacy_Jan.pdf", "", "136"),
    ("SIV_report_site_305.pdf", "", "102"),
    ("Clinical_Trial_Agreement_signed.pdf", "", "095"),
    ("Financial Disclosure Form Dr Lee.pdf", "", "093"),
    ("Medical license Dr Brown.pdf", "", "090"),
    ("Protocol_v3_final.pdf", "", "032"),
    ("Ethics committee approval.pdf", "", "066"),
    ("Close out visit report.pdf", "", "112"),
    ("Lab certification CAP.pdf", "", "160"),
    ("CLIA certificate 2024.pdf", "", "160"),
    ("Subject screening log.xlsx", "", "105"),
    ("Drug accountability log.pdf", "", "122"),
    ("Site training attendance sheet.pdf", "", "104"),
    ("Pregnancy report subject 12.pdf", "", "154"),
    ("Insurance certificate 2024.pdf", "", "036"),
    ("Randomization list master.xlsx", "", "213"),
    ("Kick-off meeting minutes.docx", "", "024"),
    ("Confidentiality agreement site.pdf", "", "080"),
    ("Regulatory authority approval letter.pdf", "", "053"),
    ("Sub-Investigator CV.pdf", "", "088"),
    ("Protocol deviation log.xlsx", "", "110"),
    ("Annotated CRF.pdf", "", "188"),
    ("IRT user manual.pdf", "", "144"),
    ("Certificate of analysis batch 12.pdf", "", "132"),
    ("Feasibility questionnaire.pdf", "", "081"),
    ("Subject diary v2.pdf", "", "038"),
    ("Recruitment advertisement poster.pdf", "", "043"),
    ("Pharmacy manual.pdf", "", "119"),
    ("Audit certificate.pdf", "", "014"),
    ("Database lock approval.pdf", "", "202"),
    (
        "scan_0001.pdf",
        "Protocol Signature Page. I have read this protocol and agree to conduct the trial.",
        "085",
    ),
]


@pytest.fixture(scope="module")
def model() -> ReferenceModel:
    return load_reference_model()


@pytest.fixture(scope="module")
def classifier(model: ReferenceModel) -> Classifier:
    return Classifier.train(model)


def _top_ids(classifier: Classifier, file_name: str, text: str = "") -> list[str]:
    return [s.artifact.unique_id for s in classifier.suggest(file_name, text, k=3)]


def test_right_artifact_is_in_the_top_three_for_at_least_ten_of_twelve_files(
    classifier: Classifier,
) -> None:
    misses = [
        (file_name, expected)
        for file_name, text, expected in QUALITY_CASES
        if expected not in _top_ids(classifier, file_name, text)
    ]
    hits = len(QUALITY_CASES) - len(misses)
    # Measured 12 of 12 when written; 10 is the floor the product promises.
    assert hits >= 10, f"top-3 rate {hits}/{len(QUALITY_CASES)}; missed {misses}"


def test_confidence_of_the_first_suggestion_matches_how_often_it_is_right(
    classifier: Classifier,
) -> None:
    cases = QUALITY_CASES + CALIBRATION_CASES
    right = confidence = 0.0
    for file_name, text, expected in cases:
        first = classifier.suggest(file_name, text, k=1)[0]
        right += first.artifact.unique_id == expected
        confidence += first.confidence
    accuracy, mean_confidence = right / len(cases), confidence / len(cases)
    assert accuracy >= 0.85
    assert abs(mean_confidence - accuracy) <= 0.1, (accuracy, mean_confidence)


def test_ambiguous_name_gets_low_confidence_and_a_specific_one_high(
    classifier: Classifier,
) -> None:
    # A CV alone does not say whose: PI, sub-investigator or other site staff.
    cv = classifier.suggest("CV_Jane_Doe_2024.pdf")
    assert {s.artifact.unique_id for s in cv} == {"087", "088", "089"}
    assert cv[0].confidence < 0.5
    assert classifier.suggest("Form FDA 1572.pdf")[0].confidence > 0.8


def test_suggestions_are_ordered_with_confidences_between_zero_and_one(
    classifier: Classifier,
) -> None:
    suggestions = classifier.suggest("Monitoring visit report 3.pdf", k=5)
    assert len(suggestions) == 5
    confidences = [s.confidence for s in suggestions]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 for c in confidences) and sum(confidences) <= 1.0 + 1e-9


def test_text_of_the_file_is_used_when_the_name_says_nothing(classifier: Classifier) -> None:
    text = "Protocol Signature Page. I have read this protocol and agree to conduct the trial."
    assert _top_ids(classifier, "scan_0001.pdf", text)[0] == "085"


def test_file_with_no_known_word_gets_no_suggestion_rather_than_a_guess(
    classifier: Classifier,
) -> None:
    assert classifier.suggest("IMG_0042.pdf") == []


def test_what_the_installation_filed_teaches_its_naming_habits(model: ReferenceModel) -> None:
    before = Classifier.train(model).suggest("Bob_Jones_CV.pdf")[0]
    filed_as_sub_investigator = [
        ("CV_Anna_Berg.pdf", "088"),
        ("Sub-I CV Tom Lee.pdf", "088"),
        ("CV_Ravi_Rao_2023.pdf", "088"),
    ]
    after = Classifier.train(model, filed_as_sub_investigator).suggest("Bob_Jones_CV.pdf")[0]
    assert before.artifact.unique_id != "088"
    assert after.artifact.unique_id == "088"


def test_example_filed_under_an_unknown_artifact_is_refused(model: ReferenceModel) -> None:
    with pytest.raises(UnknownArtifact, match="'999'"):
        Classifier.train(model, [("Some file.pdf", "999")])


def test_asking_for_no_suggestion_is_refused(classifier: Classifier) -> None:
    with pytest.raises(ClassifierError, match="at least one"):
        classifier.suggest("Protocol.pdf", k=0)


@pytest.mark.parametrize(
    ("file_name", "words"),
    [
        ("CV_Jane_Doe_2024.pdf", "cv jane doe 2024"),
        ("InformedConsentForm_v2.1_site101.docx", "informed consent form site 101"),
        ("dir/sub/ICF-Version 2.0.PDF", "icf"),
        ("Form FDA 1572.pdf", "form fda 1572"),
    ],
)
def test_file_names_are_split_into_words(file_name: str, words: str) -> None:
    assert file_name_text(file_name) == words
