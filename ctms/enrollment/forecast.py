"""Enrollment curves and the forecast of the date the target is reached.

Method (documented in the README): each site enrolls as a Poisson process whose rate is
estimated as ``enrolled / days open`` (days since its activation, at least one). The study
rate Λ is the sum of the site rates. The waiting time for the R subjects still missing is
Gamma(R, Λ): mean R/Λ days. The band is the 10th–90th percentile of that Gamma, from the
Wilson–Hilferty normal approximation, widened for the uncertainty of Λ itself (estimated from
N enrolled subjects, relative standard error 1/√N) by combining both relative errors.
Sites with no enrollment yet add nothing to Λ; with Λ = 0 there is no forecast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

Z90 = 1.2815515655446004  # standard normal 90th percentile


@dataclass(frozen=True)
class SiteRate:
    site_id: int
    enrolled: int
    days_open: int

    @property
    def rate(self) -> float:
        return self.enrolled / max(self.days_open, 1)


@dataclass(frozen=True)
class Forecast:
    target: int
    enrolled: int
    rate_per_day: float
    expected: date | None
    early: date | None
    late: date | None

    @property
    def reached(self) -> bool:
        return self.enrolled >= self.target


def forecast(today: date, target: int, sites: list[SiteRate]) -> Forecast:
    enrolled = sum(s.enrolled for s in sites)
    rate = sum(s.rate for s in sites)
    remaining = target - enrolled
    if remaining <= 0:
        return Forecast(target, enrolled, rate, today, today, today)
    if rate <= 0:
        return Forecast(target, enrolled, rate, None, None, None)
    mean = remaining / rate
    # Relative spread of Gamma(R) (≈ 1/√R) and of the rate estimate (≈ 1/√N), combined.
    rel = math.sqrt(1 / remaining + 1 / max(enrolled, 1))
    low = mean * max(0.0, 1 - Z90 * rel)
    high = mean * (1 + Z90 * rel)
    return Forecast(target, enrolled, rate, today + timedelta(days=math.ceil(mean)),
                    today + timedelta(days=math.ceil(low)), today + timedelta(days=math.ceil(high)))


def cumulative(dates: list[date]) -> list[tuple[date, int]]:
    """Step points (date, total enrolled by that date) from enrollment dates."""
    points: list[tuple[date, int]] = []
    for i, d in enumerate(sorted(dates), start=1):
        if points and points[-1][0] == d:
            points[-1] = (d, i)
        else:
            points.append((d, i))
    return points
