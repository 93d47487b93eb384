"""Pure CTMS algorithms: permuted blocks and the enrollment forecast."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest

from ctms.enrollment.forecast import SiteRate, cumulative, forecast
from ctms.randomization.blocks import permuted_blocks

PARAMS = {"arms": ["Active", "Placebo"], "strata": ["<65", ">=65"], "block_size": 4,
          "blocks_per_stratum": 25}


@pytest.mark.req("FR-CTMS-4")
def test_same_seed_same_list_and_another_seed_another_list():
    first = permuted_blocks(seed="s-1", **PARAMS)
    assert first == permuted_blocks(seed="s-1", **PARAMS)
    assert [s.arm for s in first] != [s.arm for s in permuted_blocks(seed="s-2", **PARAMS)]


@pytest.mark.req("FR-CTMS-4")
def test_every_block_of_every_stratum_is_balanced():
    slots = permuted_blocks(seed="balance", arms=["A", "B", "C"], strata=["x", "y", "z"],
                            block_size=6, blocks_per_stratum=10)
    blocks: dict[tuple[str, int], Counter[str]] = {}
    for s in slots:
        blocks.setdefault((s.stratum, s.block), Counter())[s.arm] += 1
    assert len(blocks) == 30
    assert all(c == Counter({"A": 2, "B": 2, "C": 2}) for c in blocks.values())
    assert [s.sequence for s in slots if s.stratum == "y"] == list(range(1, 61))


def test_blocks_refuse_a_size_that_cannot_balance():
    with pytest.raises(ValueError, match="multiple"):
        permuted_blocks(seed="x", arms=["A", "B", "C"], strata=["all"], block_size=4,
                        blocks_per_stratum=1)


@pytest.mark.req("FR-CTMS-6")
def test_forecast_from_site_rates_with_a_band_around_the_mean():
    today = date(2026, 11, 26)
    # Two sites, 1 subject per 10 days each: 0.2 per day; 40 more subjects ≈ 200 days.
    fc = forecast(today, 60, [SiteRate(1, 10, 100), SiteRate(2, 10, 100)])
    assert fc.expected == date(2027, 6, 14)
    assert fc.early < fc.expected < fc.late
    assert not fc.reached
    assert forecast(today, 20, [SiteRate(1, 20, 50)]).reached
    assert forecast(today, 20, [SiteRate(1, 0, 50)]).expected is None


def test_cumulative_enrollment_steps():
    d1, d2 = date(2026, 1, 1), date(2026, 1, 5)
    assert cumulative([d2, d1, d2]) == [(d1, 1), (d2, 3)]
