"""Search the artifacts of the model for the filing form's artifact picker.

The picker is typed into: "cv", "5.2.4", "irb approval", "normal ranges". It matches
artifact numbers, unique ids, names, sub-artifact names and definition text, ignoring case
and accents, and says which field matched so that the form can show "matched sub-artifact
Curriculum Vitae". Ranking, best first:

    exact number or unique id                        100
    exact name / exact sub-artifact name              95 / 92
    name / sub-artifact name starting with the query  85 / 82
    every query word starts a word of the name/sub    75 / 72  (+ up to 4 for tightness)
    every query word in the definition                40       (+ up to 4)
    artifacts of a typed section or zone              60 / 50
    some query words in a name/sub/definition         at most 30 / 28 / 15

Abbreviations ("CV", "ICF", "IRB" …, see `text.ABBREVIATIONS`) are also tried expanded,
and the better reading wins. Scores only order results; they are not probabilities.
"""

from __future__ import annotations

import bisect
import enum
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from etmf.reference_model.model import Artifact, ReferenceModel, UnknownArtifact, normalise_number
from etmf.reference_model.text import STOPWORDS, expand, fold, stem

MAX_LIMIT = 250
_UNIQUE_ID = re.compile(r"^\s*\d{3}\s*$")
# A number typed before words, as in a pasted label "05.02.08 Form FDA 1572".
_LEADING_NUMBER = re.compile(r"^\s*(\d{1,2}(?:[.\-/]\d{1,2}){1,2})\s+(.*)$")


class MatchField(enum.StrEnum):
    """Which part of an artifact matched the query."""

    NUMBER = "number"
    UNIQUE_ID = "unique id"
    NAME = "name"
    SUB_ARTIFACT = "sub-artifact"
    DEFINITION = "definition"
    SECTION = "section"
    ZONE = "zone"


@dataclass(frozen=True, slots=True)
class ArtifactMatch:
    """One picker result: the artifact, its score (higher is better, 0–100) and why.

    `matched_text` is the text that matched: the sub-artifact name for a sub-artifact match,
    the artifact name for a name match, the number for a number match, the definition for a
    definition match.
    """

    artifact: Artifact
    score: float
    field: MatchField
    matched_text: str


@dataclass(frozen=True, slots=True)
class _Entry:
    """One searchable text of one artifact."""

    artifact: Artifact
    field: MatchField
    text: str
    folded: str  # folded and stemmed words joined by single spaces
    words: tuple[str, ...]


# Score tiers per field: (exact, starts with, all words, partial max).
_TIERS: dict[MatchField, tuple[float, float, float, float]] = {
    MatchField.NAME: (95.0, 85.0, 75.0, 30.0),
    MatchField.SUB_ARTIFACT: (92.0, 82.0, 72.0, 28.0),
    MatchField.DEFINITION: (40.0, 40.0, 40.0, 15.0),
}
_SECTION_SCORE = 60.0
_ZONE_SCORE = 50.0
_EXACT_ID_SCORE = 100.0
_SHORT_PREFIX = 4


class ArtifactPicker:
    """An index over one model's artifacts, built once, searched per keystroke."""

    def __init__(self, model: ReferenceModel) -> None:
        self._model = model
        self._entries: list[_Entry] = []
        for artifact in model.artifacts:
            self._add(artifact, MatchField.NAME, artifact.name)
            for sub_artifact in artifact.sub_artifacts:
                self._add(artifact, MatchField.SUB_ARTIFACT, sub_artifact)
            self._add(artifact, MatchField.DEFINITION, artifact.definition)
        # Word → entries, kept apart for names and definitions: a short prefix ("re") is
        # matched against name words only, or it would drag in most definitions.
        self._name_postings: dict[str, set[int]] = {}
        self._definition_postings: dict[str, set[int]] = {}
        for index, entry in enumerate(self._entries):
            postings = (
                self._definition_postings
                if entry.field is MatchField.DEFINITION
                else self._name_postings
            )
            for word in entry.words:
                postings.setdefault(word, set()).add(index)
        self._vocabulary = sorted(set(self._name_postings) | set(self._definition_postings))
        self._order = {artifact.unique_id: i for i, artifact in enumerate(model.artifacts)}

    def _add(self, artifact: Artifact, field: MatchField, text: str) -> None:
        words = tuple(stem(word) for word in fold(text).split())
        self._entries.append(_Entry(artifact, field, text, " ".join(words), words))

    def search(self, query: str, limit: int = 20) -> list[ArtifactMatch]:
        """Artifacts matching `query`, best first, at most `limit` (capped at 250)."""
        limit = max(0, min(limit, MAX_LIMIT))
        if limit == 0 or not query.strip():
            return []
        best: dict[str, ArtifactMatch] = {}
        number_matches, rest = self._number_matches(query)
        for match in number_matches:
            _keep_better(best, match)
        if rest:
            for match in self._text_matches(rest):
                _keep_better(best, match)
        ranked = sorted(
            best.values(),
            key=lambda m: (-m.score, self._order[m.artifact.unique_id]),
        )
        return ranked[:limit]

    def _number_matches(self, query: str) -> tuple[list[ArtifactMatch], str]:
        """Matches for a typed number or unique id, and the query text left to search."""
        if _UNIQUE_ID.match(query):
            try:
                artifact = self._model.artifact(query)
            except UnknownArtifact:
                return [], ""
            return [
                ArtifactMatch(artifact, _EXACT_ID_SCORE, MatchField.UNIQUE_ID, artifact.unique_id)
            ], ""
        number = normalise_number(query)
        rest = ""
        if number is None:
            leading = _LEADING_NUMBER.match(query)
            if leading is None:
                return [], query
            number, rest = normalise_number(leading.group(1)), leading.group(2)
            if number is None:
                return [], query
        return self._by_number(number), rest

    def _by_number(self, number: str) -> list[ArtifactMatch]:
        parts = number.count(".")
        if parts == 2:
            try:
                artifact = self._model.artifact_by_number(number)
            except UnknownArtifact:
                return []
            return [ArtifactMatch(artifact, _EXACT_ID_SCORE, MatchField.NUMBER, artifact.number)]
        if parts == 1:
            return [
                ArtifactMatch(artifact, _SECTION_SCORE, MatchField.SECTION, artifact.section_number)
                for artifact in self._model.artifacts
                if artifact.section_number == number
            ]
        return [
            ArtifactMatch(artifact, _ZONE_SCORE, MatchField.ZONE, artifact.zone_number)
            for artifact in self._model.artifacts
            if artifact.zone_number == number
        ]

    def _text_matches(self, query: str) -> Iterable[ArtifactMatch]:
        plain = [stem(word) for word in fold(query).split()]
        yield from self._phrase_matches(plain)
        expanded = expand(plain)
        if expanded != plain:
            # "cv" also searched as "curriculum vitae": the expansion alone, since the
            # abbreviation itself rarely appears in the model's text.
            yield from self._phrase_matches(_expansion_only(plain))

    def _phrase_matches(self, words: list[str]) -> Iterable[ArtifactMatch]:
        if not words:
            return
        phrase = " ".join(words)
        content = [word for word in words if word not in STOPWORDS] or words
        hits = [self._entries_with_prefix(word) for word in content]
        candidates: set[int] = set().union(*hits)
        for index in candidates:
            entry = self._entries[index]
            matched = sum(1 for hit in hits if index in hit)
            score = _score(entry, phrase, matched, len(content))
            if score > 0:
                yield ArtifactMatch(entry.artifact, score, entry.field, entry.text)

    def _entries_with_prefix(self, word: str) -> set[int]:
        """Entries with a word starting with `word`.

        One-letter words must match a whole word; words shorter than
        `_SHORT_PREFIX` match definitions only as whole words.
        """
        found = set(self._name_postings.get(word, ())) | self._definition_postings.get(word, set())
        if len(word) < 2:
            return found
        short = len(word) < _SHORT_PREFIX
        start = bisect.bisect_left(self._vocabulary, word)
        for position in range(start, len(self._vocabulary)):
            vocabulary_word = self._vocabulary[position]
            if not vocabulary_word.startswith(word):
                break
            found |= self._name_postings.get(vocabulary_word, set())
            if not short:
                found |= self._definition_postings.get(vocabulary_word, set())
        return found


def _expansion_only(words: list[str]) -> list[str]:
    result: list[str] = []
    for word in words:
        expanded = expand([word])
        result.extend(expanded[1:] if len(expanded) > 1 else expanded)
    return result


def _score(entry: _Entry, phrase: str, matched: int, wanted: int) -> float:
    exact, starts, all_words, partial = _TIERS[entry.field]
    # Tightness: a short text that is mostly the query beats a long one that contains it.
    tightness = 4.0 * min(1.0, len(phrase.split()) / max(1, len(entry.words)))
    if entry.field is not MatchField.DEFINITION:
        if entry.folded == phrase:
            return exact
        if entry.folded.startswith(phrase):
            return starts + tightness / 2
    if matched == wanted:
        if entry.field is MatchField.DEFINITION and phrase in entry.folded:
            return all_words + 4.0  # the words appear together, as typed
        return all_words + tightness
    return partial * matched / wanted


def _keep_better(best: dict[str, ArtifactMatch], match: ArtifactMatch) -> None:
    known = best.get(match.artifact.unique_id)
    if known is None or match.score > known.score:
        best[match.artifact.unique_id] = match


@functools.lru_cache(maxsize=4)
def picker_for(model: ReferenceModel) -> ArtifactPicker:
    """The (cached) picker index of a model; building it takes a few milliseconds."""
    return ArtifactPicker(model)


def search_artifacts(model: ReferenceModel, query: str, limit: int = 20) -> list[ArtifactMatch]:
    """Artifacts of `model` matching what a user typed in the artifact picker, best first.

    Accepts names, numbers ("05.02", "5.2.1"), unique ids ("091"), sub-artifact names and
    words of the definition, in any case and with or without accents. See the module
    docstring for the ranking.
    """
    return picker_for(model).search(query, limit)
