"""Key risk indicators: definitions, default thresholds and the colour of a value (no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

GREEN, AMBER, RED, NONE = "green", "amber", "red", "none"
LEVEL_LABELS = {GREEN: "Green", AMBER: "Amber", RED: "Red", NONE: "No data"}


@dataclass(frozen=True)
class Indicator:
    code: str
    label: str
    unit: str
    #: True when a higher value is worse (the thresholds are minimums of amber and red);
    #: False when a lower value is worse (the thresholds are maximums).
    higher_is_worse: bool
    amber: Decimal
    red: Decimal


INDICATORS: tuple[Indicator, ...] = (
    Indicator("enrollment", "Enrollment vs target", "% of target", False, Decimal("80"),
              Decimal("50")),
    Indicator("screen_failure", "Screen-failure rate", "% of screened", True, Decimal("30"),
              Decimal("50")),
    Indicator("deviation_rate", "Protocol deviation rate", "× study rate", True,
              Decimal("1.25"), Decimal("1.5")),
    Indicator("sae_timeliness", "SAE reports late or overdue", "reports", True, Decimal("1"),
              Decimal("2")),
    Indicator("action_items", "Overdue action items", "items", True, Decimal("1"),
              Decimal("3")),
    Indicator("documents", "Missing or expired essential documents", "documents", True,
              Decimal("1"), Decimal("2")),
    Indicator("data_entry_lag", "Data-entry lag", "days (mean)", True, Decimal("7"),
              Decimal("14")),
    Indicator("monitoring", "Monitoring visit overdue", "days", True, Decimal("1"),
              Decimal("14")),
)
BY_CODE = {i.code: i for i in INDICATORS}


def level(indicator: Indicator, value: Decimal | None, amber: Decimal | None = None,
          red: Decimal | None = None) -> str:
    """The colour of ``value`` against the (study's or default) thresholds."""
    if value is None:
        return NONE
    amber = indicator.amber if amber is None else amber
    red = indicator.red if red is None else red
    if indicator.higher_is_worse:
        return RED if value >= red else AMBER if value >= amber else GREEN
    return RED if value < red else AMBER if value < amber else GREEN


def ratio(part: int, whole: int, scale: int = 100) -> Decimal | None:
    """``part / whole × scale`` rounded to two places, None when ``whole`` is 0."""
    if whole == 0:
        return None
    return (Decimal(part) * scale / Decimal(whole)).quantize(Decimal("0.01"))
