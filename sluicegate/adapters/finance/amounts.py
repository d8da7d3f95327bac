"""Reading amounts as banks and spreadsheets print them, straight into Decimal."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SYMBOLS = re.compile(r"[$\u20ac\u00a3\u00a5]|\b(?:USD|EUR|GBP|CHF|JPY|CAD|AUD)\b")


def parse_amount(
    text: str, *, decimal_separator: str = ".", thousands: str = ",' "
) -> Decimal | None:
    """``"$1,036.47"``, ``"11'373.94"``, ``"(1,234)"``, ``"1.234,5"`` → Decimal; blank → None.

    Raises ValueError (without echoing the text) when it is not an amount.
    """
    raw = text.strip()
    if not raw:
        return None
    negative = raw.startswith("(") and raw.endswith(")")
    raw = raw.strip("()").strip()
    raw = _SYMBOLS.sub("", raw).strip()
    if raw.endswith("-"):  # "123.45-" (trailing sign, some ledgers)
        negative, raw = not negative, raw[:-1]
    if raw.startswith("-"):
        negative, raw = not negative, raw[1:].strip()
    elif raw.startswith("+"):
        raw = raw[1:].strip()
    for sep in thousands:
        if sep != decimal_separator:
            raw = raw.replace(sep, "")
    if decimal_separator != ".":
        raw = raw.replace(decimal_separator, ".")
    raw = raw.replace("\u00a0", "")
    if not re.fullmatch(r"\d+(\.\d+)?|\.\d+", raw):
        raise ValueError("not an amount")
    try:
        value = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - guarded by the pattern
        raise ValueError("not an amount") from None
    return -value if negative else value
