"""Text normalisation shared by the artifact picker and the classifier.

Folding (case and accents), tokenising (file names included), a light plural stemmer and a
small table of the abbreviations people use in TMF file names. Plain Python, no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

# Words that carry no meaning for choosing an artifact. Kept short on purpose: "form",
# "report" or "plan" do carry meaning here.
STOPWORDS: frozenset[str] = frozenset(
    "a an and as at be by for from in into is it of on or per the to with".split()  # noqa: SIM905
)

# Abbreviations common in TMF file names and their expansions, as the model spells them
# (so that "CV" meets "Curriculum Vitae"). Expansion is applied to queries and to the
# training text alike, which makes matching symmetric: "SAE Report" in the model also
# yields "serious adverse event". Ambiguous abbreviations list every meaning (CTA is a
# Clinical Trial Agreement in the US and a Clinical Trial Application in the EU).
ABBREVIATIONS: Mapping[str, str] = {
    "asr": "annual safety report",
    "cda": "confidentiality disclosure agreement",
    "coa": "certificate of analysis",
    "cov": "close out visit",
    "crf": "case report form",
    "csr": "clinical study report",
    "cta": "clinical trial agreement application",
    "cv": "curriculum vitae",
    "dmc": "data monitoring committee",
    "dmp": "data management plan",
    "doa": "delegation of authority log",
    "dsmb": "data safety monitoring board committee",
    "dsur": "development safety update report",
    "ec": "ethics committee",
    "ecrf": "electronic case report form crf",
    "fdf": "financial disclosure form",
    "gcp": "good clinical practice",
    "ib": "investigator brochure",
    "icf": "informed consent form",
    "iec": "independent ethics committee",
    "imp": "investigational medicinal product ip",
    "ip": "investigational product",
    "irb": "institutional review board",
    "irt": "interactive response technology",
    "ivrs": "interactive voice response irt",
    "iwrs": "interactive web response irt",
    "lab": "laboratory",
    "mvr": "monitoring visit report",
    "ntf": "filenote",
    "pi": "principal investigator",
    "pv": "pharmacovigilance",
    "qp": "qualified person",
    "sae": "serious adverse event",
    "sap": "statistical analysis plan",
    "siv": "site initiation visit",
    "sop": "standard operating procedure",
    "subi": "sub investigator",
    "susar": "suspected unexpected serious adverse reaction expedited safety report",
    "tmf": "trial master file",
    "uat": "user acceptance testing",
}

# Multi-word spellings of one of the model's words, as stemmed content words (stopwords gone),
# replaced by that word.
_PHRASES: Mapping[tuple[str, ...], str] = {
    ("note", "file"): "filenote",
    ("file", "note"): "filenote",
}

# Letters that Unicode does not decompose into a base letter and an accent.
_LETTERS_WITHOUT_DECOMPOSITION = str.maketrans(
    {"æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d"}
)

_NON_WORD = re.compile(r"[^0-9a-z]+")
_APOSTROPHE = re.compile("['\u2019\u02bc]")
# Split "InformedConsent" and "CV2024" into words before folding loses the case.
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
# A file name's extension: a final dot and up to five letters or digits.
_EXTENSION = re.compile(r"\.[A-Za-z0-9]{1,5}$")
# Version markers carry no meaning for the artifact: v2, V1.0, rev_3, version 2.1.
_VERSION_MARKER = re.compile(r"(?<![A-Za-z])(?:v|ver|rev|version)[ _\-]?\d+(?:\.\d+)*", re.I)


def fold(text: str) -> str:
    """Return `text` case-folded, without accents, with every non-alphanumeric run as a space.

    Why: the picker must find "Curriculum Vitae" from "curriculum vitæ" or "CURRICULUM-vitae".
    """
    bare = text if text.isascii() else _strip_accents(text)
    # "Investigator's Brochure" must meet "investigators brochure" and "investigator brochure".
    bare = _APOSTROPHE.sub("", bare)
    return _NON_WORD.sub(" ", bare.casefold()).strip()


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTERS_WITHOUT_DECOMPOSITION))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def stem(token: str) -> str:
    """Strip an English plural ending, so that "ranges" and "range" are one word.

    Deliberately light: a real stemmer would merge words that TMF users keep apart.
    """
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def words(text: str) -> list[str]:
    """Folded, stemmed words of `text`, in order, stopwords included."""
    return [stem(word) for word in fold(text).split()]


def content_words(text: str) -> list[str]:
    """Folded, stemmed words of `text` without stopwords."""
    return [word for word in words(text) if word not in STOPWORDS]


def file_name_text(file_name: str) -> str:
    """Turn a file name into folded words: `CV_Jane_Doe_2024.pdf` becomes `cv jane doe 2024`.

    Drops folders and the extension, splits camel case and letter/digit runs, and drops
    version markers (v2, V1.0, rev_3), which say nothing about the artifact.
    """
    base = _EXTENSION.sub("", file_name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1])
    unversioned = _VERSION_MARKER.sub(" ", base)
    return fold(_CAMEL.sub(" ", unversioned))


def expand(tokens: Iterable[str]) -> list[str]:
    """Return stemmed `tokens` with every known abbreviation followed by its expansion's words.

    Also replaces a few multi-word spellings by the model's word ("note to file" → "filenote").
    """
    expanded: list[str] = []
    for token in tokens:
        expanded.append(token)
        expansion = _ABBREVIATIONS_BY_STEM.get(token)
        if expansion is not None:
            expanded.extend(content_words(expansion))
        for phrase, meaning in _PHRASES.items():
            if tuple(expanded[-len(phrase) :]) == phrase:
                expanded[-len(phrase) :] = [meaning]
    return expanded


# Tokens reach `expand` stemmed ("IVRS" becomes "ivr"), so look abbreviations up by stem.
_ABBREVIATIONS_BY_STEM: Mapping[str, str] = {
    stem(key): value for key, value in ABBREVIATIONS.items()
}
