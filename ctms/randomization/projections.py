"""Randomization events: the list is rebuilt from its parameters and seed.

The seed is sealed in the event (``sealed_seed``) and unsealed here with the instance's key;
the read table keeps the sealed form. Events written before sealing carry ``seed`` in clear.
"""

from __future__ import annotations

import json

from sqlalchemy.orm import Session

from ctms.randomization import concealment
from ctms.randomization.blocks import permuted_blocks
from ctms.randomization.models import RandomizationList, RandomizationSlot
from etmf.audit.store import PendingEvent, projection


@projection("randomization.list_generated")
def list_generated(session: Session, event: PendingEvent) -> None:
    d = event.data
    list_id = int(event.stream_id)
    sealed = "sealed_seed" in d
    seed = concealment.unseal(str(d["sealed_seed"])) if sealed else str(d["seed"])
    session.add(RandomizationList(
        id=list_id, study_id=d["study_id"], arms=json.dumps(d["arms"]),
        strata=json.dumps(d["strata"]), block_size=d["block_size"],
        blocks_per_stratum=d["blocks_per_stratum"],
        seed=str(d["sealed_seed"]) if sealed else seed, seed_sealed=sealed,
        created_at=event.occurred_at, created_by_name=event.actor.name))
    generated = permuted_blocks(seed=seed, arms=list(d["arms"]),  # type: ignore[arg-type]
                                strata=list(d["strata"]), block_size=int(d["block_size"]),  # type: ignore[arg-type]
                                blocks_per_stratum=int(d["blocks_per_stratum"]))  # type: ignore[arg-type]
    first = int(d["first_slot_id"])  # type: ignore[arg-type]
    session.add_all(RandomizationSlot(id=first + i, list_id=list_id, stratum=s.stratum,
                                      sequence=s.sequence, block=s.block, arm=s.arm)
                    for i, s in enumerate(generated))
