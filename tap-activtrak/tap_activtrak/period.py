"""The synced period's settings, read the same way in every tap (this module
is identical in all five; tests/test_period.py checks the copies).

- ``start_date`` is inclusive: an ISO date is its midnight, a date-time that
  instant; UTC unless it carries an offset. Default: midnight UTC 30 days
  before ``now``'s UTC day.
- ``end_date`` is exclusive: a date-time ends the period at that instant, an
  ISO date at the midnight after that day. Default: none.

Every instant returned is an aware UTC datetime. A value that does not parse
raises ValueError. ``lowercase_z``: also read a lowercase ``z`` as UTC (two
taps accept it; the others reject it, as Python's ``fromisoformat`` does).
"""

from __future__ import annotations

import datetime as dt
import typing as t

UTC = dt.timezone.utc
DEFAULT_START_DAYS_AGO = 30


def is_plain_date(value: t.Any) -> bool:
    """Whether a setting's value is a date without a time: ten characters, no ``T``
    (``YYYY-MM-DD``; ``date.fromisoformat`` then reads or rejects it)."""
    if isinstance(value, dt.datetime):
        return False
    text = str(value).strip()
    return len(text) == 10 and "T" not in text


def parse_instant(value: t.Any, *, lowercase_z: bool = False) -> dt.datetime:
    """A start_date-style value as an aware UTC datetime: an ISO date is its
    midnight UTC, a date-time without an offset is UTC."""
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = str(value).strip()
        if is_plain_date(text):
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), UTC)
        if lowercase_z and text.endswith("z"):
            text = text[:-1] + "Z"
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_end(value: t.Any, *, lowercase_z: bool = False) -> dt.datetime | None:
    """An end_date-style value as the instant that ends the period (exclusive):
    a date-time is that instant, an ISO date the midnight after that day; None
    for no value."""
    if value is None or value == "":
        return None
    end = parse_instant(value, lowercase_z=lowercase_z)
    return end + dt.timedelta(days=1) if is_plain_date(value) else end


def default_start(now: dt.datetime) -> dt.datetime:
    """Midnight UTC, ``DEFAULT_START_DAYS_AGO`` days before ``now``'s UTC day."""
    day = now.astimezone(UTC).date() - dt.timedelta(days=DEFAULT_START_DAYS_AGO)
    return dt.datetime.combine(day, dt.time(), UTC)


def start_instant(config: t.Mapping[str, t.Any], now: dt.datetime, *, lowercase_z: bool = False) -> dt.datetime:
    """Where the synced period starts (inclusive): start_date, else ``default_start(now)``."""
    value = config.get("start_date")
    return parse_instant(value, lowercase_z=lowercase_z) if value else default_start(now)


def end_instant(config: t.Mapping[str, t.Any], *, lowercase_z: bool = False) -> dt.datetime | None:
    """Where the synced period ends (exclusive): end_date's end, None without one."""
    value = config.get("end_date")
    return parse_end(value, lowercase_z=lowercase_z) if value else None
