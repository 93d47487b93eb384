"""Signature workflow rules as plain data and functions (no Flask, no database).

Meanings come from one configured list; each study role may sign with some of them only
(SIG-6). A request's signers sign in order (sequential) or in any order (parallel) (SIG-7).
Only documents that are In QC or Approved can be signed: a draft is still being written,
and superseded or obsolete versions are no longer the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from etmf.documents.lifecycle import State
from etmf.errors import Forbidden, InvalidTransition, ValidationError

#: code → the words printed in the signature (stamp, /Reason, audit record).
MEANINGS: dict[str, str] = {
    "author": "Authorship",
    "review": "Review",
    "approval": "Approval",
    "investigator_attestation": "Investigator attestation",
    "acknowledgement": "Acknowledgement of receipt",
}

#: study role → meanings it may sign with. Roles not listed may not sign at all.
ROLE_MEANINGS: dict[str, frozenset[str]] = {
    "study_manager": frozenset({"author", "review", "approval", "acknowledgement"}),
    "qc_reviewer": frozenset({"review", "approval"}),
    "investigator": frozenset({"investigator_attestation", "review", "acknowledgement"}),
    "cra": frozenset({"author", "review"}),
}

SIGNABLE_STATES = frozenset({State.IN_QC.value, State.APPROVED.value})
ORDERINGS = {"sequential": "In order, one after the other", "parallel": "In any order"}

PENDING, SIGNED, DECLINED = "pending", "signed", "declined"
OPEN, COMPLETED, CANCELLED = "open", "completed", "cancelled"
MAX_SIGNERS = 10

ATTESTATION = ("By entering my password I sign this document electronically. I understand that "
               "my electronic signature is the legally binding equivalent of my handwritten "
               "signature, and that it means: {meaning}.")


def meaning_label(code: str) -> str:
    try:
        return MEANINGS[code]
    except KeyError:
        raise ValidationError(
            f"{code!r} is not a signature meaning; use one of: {', '.join(MEANINGS)}.") from None


def meanings_for_roles(roles: Iterable[str]) -> frozenset[str]:
    allowed: set[str] = set()
    for role in roles:
        allowed |= ROLE_MEANINGS.get(role, frozenset())
    return frozenset(allowed)


def check_signable(state: str, state_label: str) -> None:
    if state not in SIGNABLE_STATES:
        raise InvalidTransition(
            f"This document is {state_label}: only documents In QC or Approved can be signed.")


def check_meaning_allowed(meaning: str, roles: Iterable[str], who: str) -> None:
    label = meaning_label(meaning)
    if meaning not in meanings_for_roles(roles):
        allowed = sorted(MEANINGS[m] for m in meanings_for_roles(roles))
        raise Forbidden(
            f"{who} may not sign with the meaning “{label}” in this study"
            + (f"; their role allows: {', '.join(allowed)}." if allowed else
               "; their role does not sign documents."))


class SignerLike(Protocol):
    position: int
    status: str
    printed_name: str
    user_id: int


@dataclass(frozen=True)
class Turn:
    """Who may sign now."""

    positions: frozenset[int]


def whose_turn(signers: Sequence[SignerLike], ordering: str) -> Turn:
    pending = sorted((s for s in signers if s.status == PENDING), key=lambda s: s.position)
    if not pending:
        return Turn(frozenset())
    if ordering == "parallel":
        return Turn(frozenset(s.position for s in pending))
    return Turn(frozenset({pending[0].position}))


def check_turn(signers: Sequence[SignerLike], ordering: str, me: SignerLike) -> None:
    if me.status == SIGNED:
        raise InvalidTransition("You have already signed this document for this request.")
    if me.status == DECLINED:
        raise InvalidTransition("You declined to sign this request.")
    turn = whose_turn(signers, ordering)
    if me.position not in turn.positions:
        first = next(s for s in sorted(signers, key=lambda s: s.position)
                     if s.position in turn.positions)
        raise InvalidTransition(
            f"It is not your turn to sign yet: {first.printed_name} signs before you. "
            "You will get an e-mail when it is your turn.")
