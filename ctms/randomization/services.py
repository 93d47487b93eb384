"""Generate the concealed list and allocate subjects to it, each allocation an audit event.

The list (slot → arm) is visible only with ``Permission.VIEW_RANDOMIZATION_LIST`` (the
randomization manager role); a coordinator randomizing a subject learns that subject's arm
only. The seed is in the generation event sealed (encrypted under the instance's
randomization key, see :mod:`ctms.randomization.concealment`): replaying the log rebuilds the
list, but reading the audit trail does not reveal it.
"""

from __future__ import annotations

import json
import secrets
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ctms.randomization import concealment
from ctms.randomization.blocks import permuted_blocks
from ctms.randomization.models import RandomizationList, RandomizationSlot
from ctms.subjects import services as subjects
from ctms.subjects.models import Subject
from etmf.accounts.access import Access
from etmf.accounts.roles import Permission
from etmf.audit.store import UnitOfWork
from etmf.errors import Conflict, InvalidTransition, ValidationError


def active_list(session: Session, study_id: int) -> RandomizationList | None:
    return session.scalars(select(RandomizationList)
                           .where(RandomizationList.study_id == study_id)
                           .order_by(RandomizationList.id.desc()).limit(1)).first()


def generate_list(uow: UnitOfWork, access: Access, study_id: int, *, arms: list[str],
                  strata: list[str], block_size: int, blocks_per_stratum: int,
                  seed: str | None = None) -> int:
    """Create the study's randomization list (one per study)."""
    access.require(Permission.VIEW_RANDOMIZATION_LIST, study_id)
    if active_list(uow.session, study_id) is not None:
        raise Conflict("This study already has a randomization list.")
    arms = [a.strip() for a in arms if a.strip()]
    strata = [s.strip() for s in strata if s.strip()] or ["all"]
    if not 1 <= blocks_per_stratum <= 1000 or not 2 <= block_size <= 100:
        raise ValidationError("Block size must be 2–100 and blocks per stratum 1–1000.")
    if any(len(a) > 60 for a in arms) or any(len(s) > 100 for s in strata):
        raise ValidationError("Arm names are at most 60 characters, strata at most 100.")
    seed = (seed or "").strip() or secrets.token_hex(16)
    if len(seed) > 100:
        raise ValidationError("The seed is at most 100 characters.")
    try:
        slots = permuted_blocks(seed=seed, arms=arms, strata=strata, block_size=block_size,
                                blocks_per_stratum=blocks_per_stratum)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    list_id = uow.allocate_id(RandomizationList)
    slot_ids = [uow.allocate_id(RandomizationSlot) for _ in slots]  # consecutive
    first_slot = slot_ids[0]
    uow.emit("randomization", list_id, "randomization.list_generated",
             {"study_id": study_id, "arms": arms, "strata": strata, "block_size": block_size,
              "blocks_per_stratum": blocks_per_stratum,
              "sealed_seed": concealment.seal(seed),
              "first_slot_id": first_slot, "slots": len(slots)},
             expected_version=0, study_id=study_id)
    return list_id


def randomize_subject(uow: UnitOfWork, access: Access, subject_id: int, *, stratum: str,
                      on: date | None = None) -> str:
    """Allocate the next free slot of the subject's stratum; returns the arm."""
    subject = subjects.load_subject(uow.session, access, subject_id, Permission.MANAGE_SUBJECTS)
    rl = active_list(uow.session, subject.study_id)
    if rl is None:
        raise InvalidTransition("This study has no randomization list yet.")
    strata = json.loads(rl.strata)
    stratum = stratum.strip() or ("all" if strata == ["all"] else "")
    if stratum not in strata:
        raise ValidationError(f"Stratum {stratum!r} is not one of {', '.join(strata)}.")
    if subject.status != "enrolled":
        raise InvalidTransition(f"Subject {subject.number} must be enrolled to be randomized.")
    slot = uow.session.scalars(
        select(RandomizationSlot)
        .where(RandomizationSlot.list_id == rl.id, RandomizationSlot.stratum == stratum,
               RandomizationSlot.subject_id.is_(None))
        .order_by(RandomizationSlot.sequence).limit(1)).first()
    if slot is None:
        raise Conflict(f"The randomization list has no free slot left in stratum {stratum}.")
    subjects.change_status(uow, access, subject.id, "randomized", effective_on=on,
                           event_type="subject.randomized",
                           extra={"list_id": rl.id, "slot_id": slot.id, "stratum": stratum,
                                  "sequence": slot.sequence, "arm": slot.arm})
    return slot.arm


def slots(session: Session, access: Access, study_id: int) -> list[RandomizationSlot]:
    """The whole list, for the randomization role only."""
    access.require(Permission.VIEW_RANDOMIZATION_LIST, study_id)
    rl = active_list(session, study_id)
    if rl is None:
        return []
    return list(session.scalars(select(RandomizationSlot)
                                .where(RandomizationSlot.list_id == rl.id)
                                .order_by(RandomizationSlot.stratum,
                                          RandomizationSlot.sequence)))


def seed_of(session: Session, access: Access, study_id: int) -> str | None:
    """The list's seed, unsealed, for the randomization role only (to reproduce the list)."""
    access.require(Permission.VIEW_RANDOMIZATION_LIST, study_id)
    rl = active_list(session, study_id)
    return concealment.unseal(rl.seed) if rl and rl.seed_sealed else (rl.seed if rl else None)


def allocated_count(session: Session, study_id: int) -> int:
    return session.scalar(select(func.count()).select_from(Subject).where(
        Subject.study_id == study_id, Subject.arm.is_not(None))) or 0
