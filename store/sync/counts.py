"""Tolerant parsing of the counts and ids that usage endpoints send.

Counts arrive as JSON numbers, digit strings ("200", "010") or float strings
("62.0"). They are stored as 64-bit INTEGER; anything that is not a whole,
non-negative number that fits is rejected with its JSON path.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

from store.errors import PageRejected

INT64_MAX = 2**63 - 1
FLOAT_EXACT_LIMIT = 2**53   # below it, a float holds every whole number exactly
_DIGITS = re.compile(r"\s*\+?(\d+)\s*")
_DECIMAL = re.compile(r"\s*\+?(\d*)\.(\d*)\s*")   # "62.0", "62.", ".0" (not ".")


def parse_count(value: object, path: str) -> int:
    """A non-negative whole number that fits in a signed 64-bit integer.

    Accepts ``200``, ``"200"``, ``"010"``, ``62.0``, ``"62.0"``; rejects
    booleans, negatives, fractions, ``NaN``/``inf``, over-64-bit values, ``null``,
    and JSON floats from 2**53 on (decoding has already rounded them).
    """
    if type(value) is int:  # the hot path: most counts are plain JSON numbers (a bool is not one)
        number = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise PageRejected(f"expected a count, got {value!r}", path=path)
        if not value.is_integer():
            raise PageRejected(f"count {value!r} is not a whole number", path=path)
        if abs(value) >= FLOAT_EXACT_LIMIT:
            # From 2**53 on a JSON float is already rounded when decoded: the figure
            # the source meant cannot be known, so it is refused, not guessed.
            raise PageRejected(f"count {value!r} is too large to be exact as a JSON float "
                               "(send it as an integer or a digit string)", path=path)
        number = int(value)
    elif isinstance(value, str):
        match = _DIGITS.fullmatch(value)
        if match:
            number = _whole(match.group(1), value, path)
        else:
            decimal = _DECIMAL.fullmatch(value)
            if decimal is None or not any(decimal.groups()) or any(d != "0" for d in decimal.group(2)):
                raise PageRejected(f"count {_show(value)} is not a whole number", path=path)
            number = _whole(decimal.group(1), value, path)
    else:
        raise PageRejected(f"expected a count, got {_show(value)}", path=path)
    if number < 0:
        raise PageRejected(f"count {number} is negative", path=path)
    if number > INT64_MAX:
        raise PageRejected(f"count {_show(value)} does not fit in 64 bits", path=path)
    return number


def _whole(digits: str, value: object, path: str) -> int:
    """The number a run of digits spells (none: 0). Python refuses to convert more
    than 4,300 digits (so that converting stays fast); such a count would not fit
    in 64 bits anyway."""
    try:
        return int(digits) if digits else 0
    except ValueError:
        raise PageRejected(f"count {_show(value)} does not fit in 64 bits", path=path) from None


def parse_id(value: object, path: str) -> str:
    """A provider id as TEXT. Numbers are accepted only when they are exact integers
    (a 22-digit id sent as a JSON number has already lost precision if it was a float)."""
    if isinstance(value, str):
        if not value.strip():
            raise PageRejected("id is empty", path=path)
        return value
    if type(value) is int:
        return str(value)
    raise PageRejected(f"expected an id, got {_show(value)}", path=path)


def parse_day(value: object, path: str) -> str:
    """A UTC day ``YYYY-MM-DD`` from ``"2023-11-01"``, ``"2023-11-01T00:00:00.000Z"``
    or epoch seconds."""
    if type(value) is int:
        try:
            return datetime.fromtimestamp(value, timezone.utc).date().isoformat()
        except (OverflowError, OSError, ValueError):
            raise PageRejected(f"timestamp {value} is out of range", path=path) from None
    if not isinstance(value, str):
        raise PageRejected(f"expected a date, got {_show(value)}", path=path)
    text = value.strip()
    try:
        if len(text) == 10:
            return datetime.strptime(text, "%Y-%m-%d").date().isoformat()
        moment = datetime.fromisoformat(text)   # from Python 3.11 it reads a "Z" as UTC
    except ValueError:
        raise PageRejected(f"{_show(value)} is not a date", path=path) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc).date().isoformat()
    except OverflowError:  # "9999-12-31T23:00:00-05:00" is in year 10000 in UTC
        raise PageRejected(f"{_show(value)} is out of range", path=path) from None


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
