"""Key risk indicators per site, computed from what the system holds, and the heat map.

Each cell carries its value, colour against the study's thresholds (or the defaults) and a
link to the records behind it. Deviation rate is deviations per subject screened at the site
divided by the same rate over the whole study: 2.00 means twice the study's rate.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal Decimal import Decimal  # noqa
