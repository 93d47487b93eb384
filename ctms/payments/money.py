"""Money as integer minor units (cents): parsed from and written as decimal text, never floats.

Shares (the holdback) are rounded half up on non-negative amounts.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from etmf.errors import ValidationError

#: ISO 4217 currencies without minor units; all others here use two decimals.
ZERO_DECIMAL = frozenset({"JPY", "KRW", "ISK", "CLP", "VND"})
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,3})?$")
#: Holdback and other percentages are kept in basis points (1 % = 100).
MAX_BP = 10_000


def check_currency(code: str) -> str:
    code = (code or "").strip().upper()
    if not _CURRENCY.match(code):
        raise ValidationError(f"{code or 'The currency'!r} is not a three-letter ISO 4217 code.")
    return code


def exponent(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL else 2


def to_minor(text: str | int | Decimal | None, currency: str, what: str = "amount") -> int:
    """``"1,250.50"`` in EUR → 125050. Empty means zero; negative or sub-cent is refused."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return 0
    if isinstance(text, (bool, float)):
        raise ValidationError(f"The {what} must be given as text or a whole number.")
    raw = str(text).strip().replace(",", "").replace(" ", "")
    if not _AMOUNT.match(raw):
        raise ValidationError(f"The {what} {text!s} is not an amount like 1250.00.")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ValidationError(f"The {what} {text!s} is not an amount.") from None
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValidationError(f"The {what} {text!s} has more decimals than {currency} allows.")
    return int(scaled)


def to_text(minor: int, currency: str) -> str:
    """125050 in EUR → ``"1250.50"`` (no grouping: for files and forms)."""
    e = exponent(currency)
    return str(Decimal(minor).scaleb(-e).quantize(Decimal(1).scaleb(-e)))


def display(minor: int, currency: str) -> str:
    """125050 in EUR → ``"1,250.50 EUR"`` (for pages)."""
    e = exponent(currency)
    return f"{Decimal(minor).scaleb(-e):,.{e}f} {currency}"


def percent_to_bp(text: str | None) -> int:
    """``"10"`` or ``"7.5"`` percent → basis points (1000, 750)."""
    raw = (text or "").strip().rstrip("%").strip() or "0"
    try:
        value = Decimal(raw) * 100
    except InvalidOperation:
        raise ValidationError(f"{text!r} is not a percentage.") from None
    if value != value.to_integral_value() or not 0 <= value <= MAX_BP:
        raise ValidationError("The holdback is a percentage from 0 to 100, at most two "
                              "decimals.")
    return int(value)


def bp_to_percent(bp: int) -> str:
    return str(Decimal(bp).scaleb(-2).normalize())


def share(minor: int, bp: int) -> int:
    """``minor × bp / 10000`` rounded half up (amounts are non-negative)."""
    return (minor * bp + MAX_BP // 2) // MAX_BP
