"""Suggest artifacts for a file being filed, from its name and text.

A multinomial naive-Bayes scorer in plain Python, trained locally: no model download, no
dependency. Each artifact's training text is its name, sub-artifact names, definition and
section and zone names (weighted in that order), plus whatever the installation has already
filed there (`extra_examples`). Features are folded, plural-stemmed words, their abbreviation
expansions (`text.ABBREVIATIONS`: "CV" also counts as "curriculum vitae") and adjacent word
pairs, so that "monitoring visit report" outweighs a stray "monitoring".

The prior favours what is filed most: Core artifacts (expected in every TMF) and site-level
ones (filed once per site), plus one count per example the installation filed there. So a
bare "CV" suggests the site CVs before the trial team's.

Confidence is the naive-Bayes posterior over all artifacts of the model (the confidences of
all 250 sum to 1), tempered so that it is honest. Naive Bayes counts correlated words (a
word, its expansion, its pairs) as independent evidence, which pushes raw posteriors to 0 or
1. The log-likelihoods are therefore divided by the total weight of the file's known
features and multiplied by `TEMPERATURE`, a constant chosen so that on the realistic file
names of `tests/unit/reference_model/test_classify.py` the mean confidence of the first
suggestion is close to how often it is right (on those 47 names when this was written: right
94% of the time, mean confidence 0.95; a test keeps the two within 0.1). An ambiguous name
gets a low confidence ("CV" alone: about 0.25 for the first site CV). It is a ranking aid
for a person who confirms the choice, not a calibrated probability to file without looking.
A few consistent local examples quickly raise confidence towards 1 for their artifact.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from etmf.reference_model.model import Artifact, FilingLevel, ReferenceModel
from etmf.reference_model.text import content_words, expand, file_name_text

# How many times each part of the model's own text counts for its artifact.
NAME_WEIGHT = 3.0
SUB_ARTIFACT_WEIGHT = 2.0
DEFINITION_WEIGHT = 0.5
SECTION_WEIGHT = 1.0
ZONE_WEIGHT = 0.5
# Something a person actually filed under an artifact counts like its name.
EXAMPLE_WEIGHT = 3.0
# A file name says more about what a file is than a paragraph of its text.
FILE_NAME_WEIGHT = 2.0
# Additive (Laplace/Lidstone) smoothing of word counts.
SMOOTHING = 0.1
# Prior: how often an artifact is filed, approximated from the model. Core artifacts are
# expected in every TMF; site-level artifacts are filed once per site, so there are more.
CORE_PRIOR = 2.0
SITE_PRIOR = 3.0
# Scale of the per-feature evidence before the softmax; see the module docstring.
TEMPERATURE = 6.0
# Only the start of a long text is read: titles and headings are there, and it keeps
# suggestion time bounded whatever the file.
MAX_TEXT_WORDS = 1000


class ClassifierError(ValueError):
    """A training example or a request to the classifier is not usable."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A suggested artifact for a file, with a confidence between 0 and 1."""

    artifact: Artifact
    confidence: float


def features(text: str) -> list[str]:
    """The classifier's features of a text: words, abbreviation expansions and word pairs."""
    words = expand(content_words(text))
    pairs = [f"{first} {second}" for first, second in zip(words, words[1:], strict=False)]
    return words + pairs


def file_features(file_name: str, text: str) -> defaultdict[str, float]:
    """Weighted features of a file: its name's (counted double) and its text's."""
    counted: defaultdict[str, float] = defaultdict(float)
    for feature in features(file_name_text(file_name)):
        counted[feature] += FILE_NAME_WEIGHT
    head = " ".join(text.split()[:MAX_TEXT_WORDS])
    for feature in features(head):
        counted[feature] += 1.0
    return counted


class Classifier:
    """Artifact suggestions for filed files; build with `Classifier.train`."""

    def __init__(
        self,
        model: ReferenceModel,
        log_likelihoods: Mapping[str, Mapping[str, float]],
        log_unseen: Mapping[str, float],
        phrases: frozenset[str] = frozenset(),
        log_priors: Mapping[str, float] | None = None,
    ) -> None:
        self._model = model
        self._log_likelihoods = log_likelihoods
        self._log_unseen = log_unseen
        self._phrases = phrases
        self._log_priors = log_priors or {}
        self._longest_phrase = max((phrase.count(" ") + 1 for phrase in phrases), default=0)
        self._phrase_starts = frozenset(phrase.split(" ", 1)[0] for phrase in phrases)
        self._vocabulary = frozenset(
            feature for likelihoods in log_likelihoods.values() for feature in likelihoods
        )

    @classmethod
    def train(
        cls, model: ReferenceModel, extra_examples: Iterable[tuple[str, str]] = ()
    ) -> Classifier:
        """Train on the model's own text plus `extra_examples` of (text, artifact unique id).

        `extra_examples` are what this installation has already filed (a title or file name
        and the artifact chosen), so suggestions learn the local naming habits. An unknown
        unique id raises `UnknownArtifact`.
        """
        # Resolve every example first: a bad id is refused before any training work.
        examples = [(text, model.artifact(unique_id)) for text, unique_id in extra_examples]
        counts = {
            artifact.unique_id: _model_counts(model, artifact) for artifact in model.artifacts
        }
        examples_filed: defaultdict[str, int] = defaultdict(int)
        for text, artifact in examples:
            examples_filed[artifact.unique_id] += 1
            for feature in features(file_name_text(text)):
                counts[artifact.unique_id][feature] += EXAMPLE_WEIGHT
        vocabulary = set().union(*counts.values())
        log_likelihoods: dict[str, dict[str, float]] = {}
        log_unseen: dict[str, float] = {}
        for unique_id, counted in counts.items():
            total = sum(counted.values()) + SMOOTHING * len(vocabulary)
            log_likelihoods[unique_id] = {
                feature: math.log((count + SMOOTHING) / total) for feature, count in counted.items()
            }
            log_unseen[unique_id] = math.log(SMOOTHING / total)
        log_priors = {
            artifact.unique_id: _log_prior(model, artifact, examples_filed[artifact.unique_id])
            for artifact in model.artifacts
        }
        return cls(model, log_likelihoods, log_unseen, _phrases_of(model), log_priors)

    def suggest(self, file_name: str, text: str = "", k: int = 3) -> list[Suggestion]:
        """The `k` most likely artifacts for a file, most likely first.

        Empty when neither the file name nor the text has a single word the model knows
        (a scan named `IMG_0042.pdf` with no text gets no suggestion rather than a guess).
        """
        if k < 1:
            raise ClassifierError(f"Ask for at least one suggestion, not {k}.")
        weighted = file_features(file_name, text)
        weighted.update(self._phrase_features(file_name, text))
        observed = {
            feature: weight for feature, weight in weighted.items() if feature in self._vocabulary
        }
        if not observed:
            return []
        evidence = self._evidence(observed)
        scale = TEMPERATURE / sum(observed.values())
        # The prior is not tempered with the evidence: it is one fact, not many.
        posterior = {uid: e * scale + self._log_priors.get(uid, 0.0) for uid, e in evidence.items()}
        confidences = _softmax(posterior)
        best = sorted(confidences, key=lambda unique_id: -confidences[unique_id])[:k]
        return [Suggestion(self._model.artifact(uid), confidences[uid]) for uid in best]

    def _phrase_features(self, file_name: str, text: str) -> defaultdict[str, float]:
        """Whole artifact or sub-artifact names that occur, word for word, in the file."""
        found: defaultdict[str, float] = defaultdict(float)
        head = " ".join(text.split()[:MAX_TEXT_WORDS])
        for source, weight in ((file_name_text(file_name), FILE_NAME_WEIGHT), (head, 1.0)):
            words = expand(content_words(source))
            for start, word in enumerate(words):
                if word not in self._phrase_starts:
                    continue
                for end in range(start + 1, min(len(words), start + self._longest_phrase) + 1):
                    phrase = " ".join(words[start:end])
                    if phrase in self._phrases:
                        found[_phrase_feature(phrase)] += weight
        return found

    def _evidence(self, observed: Mapping[str, float]) -> dict[str, float]:
        """Log-likelihood of the observed features under each artifact (prior not included)."""
        evidence: dict[str, float] = {}
        for unique_id, likelihoods in self._log_likelihoods.items():
            unseen = self._log_unseen[unique_id]
            evidence[unique_id] = sum(
                weight * likelihoods.get(feature, unseen) for feature, weight in observed.items()
            )
        return evidence


def _model_counts(model: ReferenceModel, artifact: Artifact) -> defaultdict[str, float]:
    counted: defaultdict[str, float] = defaultdict(float)
    parts: Sequence[tuple[str, float]] = [
        (artifact.name, NAME_WEIGHT),
        *((sub_artifact, SUB_ARTIFACT_WEIGHT) for sub_artifact in artifact.sub_artifacts),
        (artifact.definition, DEFINITION_WEIGHT),
        (model.section(artifact.section_number).name, SECTION_WEIGHT),
        (model.zone(artifact.zone_number).name, ZONE_WEIGHT),
    ]
    for text, weight in parts:
        for feature in features(text):
            counted[feature] += weight
    # The artifact's own names as whole phrases: a file called "Monitoring Visit Report"
    # is that artifact, not one whose sub-artifacts merely share the words.
    for text, weight in _names_of(artifact):
        counted[_phrase_feature(_phrase(text))] += weight
    return counted


def _log_prior(model: ReferenceModel, artifact: Artifact, examples_filed: int) -> float:
    weight = CORE_PRIOR if artifact.core else 1.0
    if FilingLevel.SITE in model.levels_of(artifact):
        weight *= SITE_PRIOR
    return math.log(weight + examples_filed)


def _names_of(artifact: Artifact) -> list[tuple[str, float]]:
    names = [(artifact.name, NAME_WEIGHT)]
    names.extend((sub_artifact, SUB_ARTIFACT_WEIGHT) for sub_artifact in artifact.sub_artifacts)
    return names


def _phrase(text: str) -> str:
    return " ".join(content_words(text))


def _phrase_feature(phrase: str) -> str:
    # Brackets cannot occur in a folded word, so phrase features never collide with words.
    return f"[{phrase}]"


def _phrases_of(model: ReferenceModel) -> frozenset[str]:
    return frozenset(
        _phrase(text) for artifact in model.artifacts for text, _ in _names_of(artifact)
    )


def _softmax(scores: Mapping[str, float]) -> dict[str, float]:
    top = max(scores.values())  # subtracted so that exp() cannot overflow
    exponentials = {key: math.exp(value - top) for key, value in scores.items()}
    total = sum(exponentials.values())
    return {key: value / total for key, value in exponentials.items()}
