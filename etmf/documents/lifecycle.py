"""The document lifecycle, as plain rules: Draft → In QC → Approved → Superseded / Obsolete.

QC rejection sends a version back to Draft. A final (approved) version's content never
changes: new content is a new version, which supersedes the approved one when it is itself
approved. Withdrawal (Obsolete) needs a reason.
"""

from __future__ import annotations

from enum import StrEnum

from etmf.errors import InvalidTransition


class State(StrEnum):
    DRAFT = "draft"
    IN_QC = "in_qc"
    APPROVED = "approved"
    SUPERSEDED = "superseded"
    OBSOLETE = "obsolete"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    State.DRAFT: "Draft",
    State.IN_QC: "In QC",
    State.APPROVED: "Approved",
    State.SUPERSEDED: "Superseded",
    State.OBSOLETE: "Obsolete",
}


class Action(StrEnum):
    SUBMIT_QC = "submit_qc"
    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"


_TRANSITIONS: dict[tuple[State, Action], State] = {
    (State.DRAFT, Action.SUBMIT_QC): State.IN_QC,
    (State.IN_QC, Action.APPROVE): State.APPROVED,
    (State.IN_QC, Action.REJECT): State.DRAFT,
    (State.APPROVED, Action.WITHDRAW): State.OBSOLETE,
    (State.DRAFT, Action.WITHDRAW): State.OBSOLETE,
}

_WHY_NOT = {
    Action.SUBMIT_QC: "Only a draft can be sent to QC.",
    Action.APPROVE: "A document can only be approved after QC: send it to QC first.",
    Action.REJECT: "Only a document in QC can be rejected.",
    Action.WITHDRAW: "Only a draft or an approved document can be withdrawn.",
}

REASON_REQUIRED = frozenset({Action.WITHDRAW, Action.REJECT})


def next_state(current: State | str, action: Action | str) -> State:
    """The state after ``action``, or :class:`InvalidTransition` saying why not."""
    current, action = State(current), Action(action)
    try:
        return _TRANSITIONS[(current, action)]
    except KeyError:
        raise InvalidTransition(
            f"{_WHY_NOT[action]} This document is {current.label}."
        ) from None


def allowed_actions(current: State | str) -> list[Action]:
    current = State(current)
    return [action for (state, action) in _TRANSITIONS if state == current]


def is_final(state: State | str) -> bool:
    return state in {State.APPROVED, State.SUPERSEDED, State.OBSOLETE}


# Records without a file of their own (REC-7). They are browsable like documents but have
# no versions: a placeholder (an expected document) becomes a draft when its file is
# uploaded; a signpost says which other system holds the record and where.
PLACEHOLDER = "placeholder"
SIGNPOST = "signpost"
RECORD_STATUS_LABELS = {PLACEHOLDER: "Expected (placeholder)", SIGNPOST: "Held elsewhere"}
#: What a reader without draft rights may see.
VISIBLE_WITHOUT_DRAFTS = (State.APPROVED.value, State.SUPERSEDED.value, PLACEHOLDER, SIGNPOST)


def status_label(status: str) -> str:
    """Label of any document status, lifecycle or placeholder/signpost."""
    if status in RECORD_STATUS_LABELS:
        return RECORD_STATUS_LABELS[status]
    try:
        return State(status).label
    except ValueError:
        return status


#: Categories a QC reviewer picks from when rejecting.
QC_CATEGORIES = (
    "Wrong classification",
    "Metadata incorrect or missing",
    "Illegible or incomplete",
    "Missing signature or date",
    "Wrong or superseded version",
    "Duplicate",
    "Other",
)
