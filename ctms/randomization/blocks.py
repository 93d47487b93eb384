"""Permuted blocks, stratified and seeded: the pure algorithm (no database).

For each stratum, in the order given, ``blocks_per_stratum`` blocks are drawn; each block
holds every arm ``block_size / len(arms)`` times, shuffled by one ``random.Random(seed)``
that runs through all strata. The same seed, arms, strata and sizes give the same list.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    stratum: str
    sequence: int  # 1-based within the stratum
    block: int  # 1-based within the stratum
    arm: str


def permuted_blocks(*, seed: str, arms: list[str], strata: list[str], block_size: int,
                    blocks_per_stratum: int) -> list[Slot]:
    if len(arms) < 2 or len(set(arms)) != len(arms):
        raise ValueError("A randomization needs at least two different arms.")
    if block_size <= 0 or block_size % len(arms):
        raise ValueError(f"The block size must be a multiple of the number of arms ({len(arms)}).")
    if not strata or len(set(strata)) != len(strata):
        raise ValueError("Strata must be distinct (use one stratum 'all' for none).")
    rng = random.Random(seed)
    slots: list[Slot] = []
    per_arm = block_size // len(arms)
    for stratum in strata:
        sequence = 0
        for block in range(1, blocks_per_stratum + 1):
            cell = [arm for arm in arms for _ in range(per_arm)]
            rng.shuffle(cell)
            for arm in cell:
                sequence += 1
                slots.append(Slot(stratum, sequence, block, arm))
    return slots
