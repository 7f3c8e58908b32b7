"""Ages written as text (``15m``, ``2h``, ``7d``), as ``--since`` and freshness checks take them."""

from __future__ import annotations

from datetime import timedelta

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta | None:
    """``2h`` → two hours; None when `text` is not a number followed by s, m, h, d or w."""
    text = text.strip()
    number, unit = text[:-1].strip(), text[-1:].lower()
    if not number.isdigit() or unit not in UNITS:
        return None
    return timedelta(**{UNITS[unit]: int(number)})
