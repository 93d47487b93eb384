"""The TMF Reference Model 3.3.1 as data: typed model, artifact picker, filing suggestions.

Plain Python (standard library only): no Flask, no database.
"""

from etmf.reference_model.classify import Classifier, ClassifierError, Suggestion
from etmf.reference_model.model import (
    DEFAULT_VERSION,
    Artifact,
    FilingLevel,
    Milestone,
    ReferenceDataError,
    ReferenceModel,
    ReferenceModelError,
    Section,
    UnknownArtifact,
    UnknownMilestone,
    UnknownSection,
    UnsupportedModelVersion,
    Zone,
    load_reference_model,
    normalise_number,
)
from etmf.reference_model.picker import ArtifactMatch, MatchField, search_artifacts

__all__ = [
    "DEFAULT_VERSION",
    "Artifact",
    "ArtifactMatch",
    "Classifier",
    "ClassifierError",
    "FilingLevel",
    "MatchField",
    "Milestone",
    "ReferenceDataError",
    "ReferenceModel",
    "ReferenceModelError",
    "Section",
    "Suggestion",
    "UnknownArtifact",
    "UnknownMilestone",
    "UnknownSection",
    "UnsupportedModelVersion",
    "Zone",
    "load_reference_model",
    "normalise_number",
    "search_artifacts",
]
