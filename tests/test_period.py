"""Each tap's ``period.py``: the copies are identical, and the same tests run
against each copy: how ``start_date`` and ``end_date`` are read (start
inclusive, end exclusive, UTC unless an offset is given) and the default
start, 30 days before today at midnight UTC."""

from __future__ import annotations

import datetime as dt
import importlib
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc

TAPS = {
    "tap-activtrak": "tap_activtrak",
    "tap-beyondtrust": "tap_beyondtrust",
    "tap-controlio": "tap_controlio",
    "tap-ekran": "tap_ekran",
    "tap-sessionreports": "tap_sessionreports",
}
#: each tap's own copies, now gone: the tap reads its period through ``period``
REMOVED = {
    "tap_activtrak": ("config_instant", "DEFAULT_START_DAYS_AGO"),
    "tap_beyondtrust": ("end_bound",),
    "tap_controlio": ("instant", "is_date", "end_instant", "DEFAULT_START_DAYS_AGO"),
    "tap_ekran": ("config_start_date", "config_end_date", "DEFAULT_START_DAYS_AGO"),
    "tap_sessionreports": ("end_instant", "default_start_date", "DEFAULT_START_DAYS"),
}
by_tap = pytest.mark.parametrize("package", list(TAPS.values()), ids=list(TAPS))


def period_of(package: str) -> types.ModuleType:
    return importlib.import_module(f"{package}.period")


def test_the_copies_are_identical():
    copies = {tap: (ROOT / tap / package / "period.py").read_bytes() for tap, package in TAPS.items()}
    assert len(copies) == 5
    assert len(set(copies.values())) == 1, "the period.py copies differ"


@by_tap
def test_each_tap_reads_its_own_copy_and_keeps_no_other(package):
    module = period_of(package)
    tap = next(name for name, pkg in TAPS.items() if pkg == package)
    assert Path(module.__file__) == ROOT / tap / package / "period.py"
    user = importlib.import_module(f"{package}.{'streams' if package == 'tap_ekran' else 'client'}")
    assert user.period is module
    client = importlib.import_module(f"{package}.client")
    assert [name for name in REMOVED[package] if hasattr(client, name)] == []


@by_tap
@pytest.mark.parametrize(("value", "instant"), [
    ("2024-05-01", dt.datetime(2024, 5, 1, tzinfo=UTC)),  # a date: its midnight UTC
    (" 2024-05-01 ", dt.datetime(2024, 5, 1, tzinfo=UTC)),
    ("2024-05-01T10:00:00+02:00", dt.datetime(2024, 5, 1, 8, tzinfo=UTC)),
    ("2024-05-01T01:30:00+05:30", dt.datetime(2024, 4, 30, 20, tzinfo=UTC)),  # the day before in UTC
    ("2024-05-01T23:00:00-02:00", dt.datetime(2024, 5, 2, 1, tzinfo=UTC)),
    ("2024-05-01T10:00:00", dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),  # naive: UTC
    ("2024-05-01 10:00:00.250000", dt.datetime(2024, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)),
    ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),
    (dt.datetime(2024, 5, 1, 10), dt.datetime(2024, 5, 1, 10, tzinfo=UTC)),
    (dt.datetime(2024, 5, 1, 10, tzinfo=dt.timezone(dt.timedelta(hours=-4))), dt.datetime(2024, 5, 1, 14, tzinfo=UTC)),
])
def test_a_start_is_that_instant_in_utc(package, value, instant):
    period = period_of(package)
    start = period.parse_instant(value)
    assert (start, start.tzinfo, start.isoformat()) == (instant, UTC, instant.isoformat())
    now = dt.datetime(2030, 1, 1, tzinfo=UTC)  # a start_date leaves now unused
    assert period.start_instant({"start_date": value}, now) == instant
    assert period.start_instant({"start_date": value}, now).tzinfo is UTC


@by_tap
@pytest.mark.parametrize(("value", "instant"), [
    ("2024-05-01", dt.datetime(2024, 5, 2, tzinfo=UTC)),  # a date: the midnight after it
    ("2024-01-31", dt.datetime(2024, 2, 1, tzinfo=UTC)),
    ("2024-02-28", dt.datetime(2024, 2, 29, tzinfo=UTC)),
    ("2024-02-29", dt.datetime(2024, 3, 1, tzinfo=UTC)),
    ("2023-02-28", dt.datetime(2023, 3, 1, tzinfo=UTC)),
    ("2024-12-31", dt.datetime(2025, 1, 1, tzinfo=UTC)),
    ("2024-05-01T06:30:00Z", dt.datetime(2024, 5, 1, 6, 30, tzinfo=UTC)),  # a date-time: that instant
    ("2024-05-01T00:00:00", dt.datetime(2024, 5, 1, tzinfo=UTC)),
    ("2024-05-01T05:00:00+02:00", dt.datetime(2024, 5, 1, 3, tzinfo=UTC)),
    (dt.datetime(2024, 5, 1), dt.datetime(2024, 5, 1, tzinfo=UTC)),
])
def test_an_end_is_exclusive(package, value, instant):
    period = period_of(package)
    end = period.end_instant({"end_date": value})
    assert (end, end.tzinfo) == (instant, UTC)
    assert period.parse_end(value) == instant


@by_tap
@pytest.mark.parametrize("config", [{}, {"end_date": None}, {"end_date": ""}])
def test_no_end_date_is_no_end(package, config):
    period = period_of(package)
    assert period.end_instant(config) is None
    assert period.parse_end(config.get("end_date")) is None


@by_tap
@pytest.mark.parametrize(("now", "start"), [
    ("2026-03-10T15:30:00+00:00", "2026-02-08T00:00:00+00:00"),
    ("2026-03-31T12:00:00+00:00", "2026-03-01T00:00:00+00:00"),  # a month's end
    ("2026-03-01T00:00:00+00:00", "2026-01-30T00:00:00+00:00"),  # across a 28-day February
    ("2024-03-30T12:00:00+00:00", "2024-02-29T00:00:00+00:00"),  # a leap day
    ("2024-03-30T23:59:59.999999+00:00", "2024-02-29T00:00:00+00:00"),  # a microsecond before midnight
    ("2024-03-31T00:00:00+00:00", "2024-03-01T00:00:00+00:00"),  # that midnight
    ("2027-01-01T00:30:00+01:00", "2026-12-01T00:00:00+00:00"),  # still the 31st in UTC
    ("2026-12-31T20:00:00-05:00", "2026-12-02T00:00:00+00:00"),  # already the 1st in UTC
])
def test_the_default_start_is_midnight_utc_30_days_before_nows_utc_day(package, now, start):
    period = period_of(package)
    clock = dt.datetime.fromisoformat(now)
    for config in ({}, {"start_date": None}, {"start_date": ""}):
        got = period.start_instant(config, clock)
        assert (got.isoformat(), got.tzinfo) == (start, UTC)
    assert period.default_start(clock).isoformat() == start
    assert period.DEFAULT_START_DAYS_AGO == 30


@by_tap
@pytest.mark.parametrize(("value", "plain"), [
    ("2024-05-01", True), (" 2024-05-01\n", True), ("2024-05-01T00:00", False),
    ("2024-05-01T00:00:00Z", False), ("2024-05-01 00:00:00", False), (dt.datetime(2024, 5, 1), False),
])
def test_a_plain_date_has_no_time(package, value, plain):
    assert period_of(package).is_plain_date(value) is plain


@by_tap
def test_a_lowercase_z_is_utc_only_where_a_tap_asks_for_it(package):
    period = period_of(package)
    with pytest.raises(ValueError):
        period.parse_instant("2024-05-01T10:00:00z")
    assert period.parse_instant("2024-05-01T10:00:00z", lowercase_z=True) == dt.datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert period.end_instant({"end_date": "2024-05-01T10:00:00z"}, lowercase_z=True) == (
        dt.datetime(2024, 5, 1, 10, tzinfo=UTC))
    now = dt.datetime(2030, 1, 1, tzinfo=UTC)
    assert period.start_instant({"start_date": "2024-05-01T10:00:00z"}, now, lowercase_z=True) == (
        dt.datetime(2024, 5, 1, 10, tzinfo=UTC))


@by_tap
@pytest.mark.parametrize("value", ["2024-13-01", "2024-02-30", "yesterday", "2024-05-01T25:00:00", "1714521600"])
def test_a_value_that_is_no_date_is_an_error(package, value):
    period = period_of(package)
    with pytest.raises(ValueError):
        period.parse_instant(value)
    with pytest.raises(ValueError):
        period.end_instant({"end_date": value})
    with pytest.raises(ValueError):
        period.start_instant({"start_date": value}, dt.datetime(2030, 1, 1, tzinfo=UTC))
