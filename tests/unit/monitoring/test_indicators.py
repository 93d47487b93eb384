"""KRI levels and clocks without I/O."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ctms.risk.indicators import BY_CODE, level, ratio
from ctms.safety.services import clock_days


@pytest.mark.req("FR-MON-4")
@pytest.mark.parametrize(("code", "value", "expected"), [
    ("deviation_rate", "1.24", "green"), ("deviation_rate", "1.25", "amber"),
    ("deviation_rate", "1.50", "red"), ("enrollment", "80", "green"),
    ("enrollment", "79.99", "amber"), ("enrollment", "49", "red"), ("documents", "0", "green"),
])
def test_levels_follow_the_direction_of_each_indicator(code, value, expected):
    assert level(BY_CODE[code], Decimal(value)) == expected


def test_no_data_is_neither_green_nor_red_and_ratios_are_exact():
    assert level(BY_CODE["enrollment"], None) == "none"
    assert ratio(1, 3) == Decimal("33.33") and ratio(1, 0) is None


@pytest.mark.req("FR-MON-2")
def test_clocks_7_for_fatal_or_life_threatening_15_for_other_none_if_expected():
    assert clock_days(7, 15, fatal=True, life_threatening=False, expected=False) == 7
    assert clock_days(7, 15, fatal=False, life_threatening=True, expected=False) == 7
    assert clock_days(7, 15, fatal=False, life_threatening=False, expected=False) == 15
    assert clock_days(7, 15, fatal=True, life_threatening=False, expected=True) is None
