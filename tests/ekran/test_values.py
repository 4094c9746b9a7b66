"""The tap's reading of Ekran's values: time spans and date-times."""

from __future__ import annotations

import pytest

from tap_ekran.client import timespan_seconds, utc_iso


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("20:20:40.0020000", 20 * 3600 + 20 * 60 + 40.002),  # the document's sample
        ("8:12:25.7950000", 8 * 3600 + 12 * 60 + 25.795),  # one-digit hour, also the sample
        ("07:22:57.6540000", 7 * 3600 + 22 * 60 + 57.654),
        ("00:00:00", 0.0),
        ("00:01:02.5", 62.5),
        ("1.02:03:04.5000000", 86400 + 2 * 3600 + 3 * 60 + 4.5),  # .NET: a day count past 24 hours
        ("-00:00:01.0000000", -1.0),
        ("26:00:00.0000000", 26 * 3600.0),
    ],
)
def test_time_spans_in_seconds(text, seconds):
    assert timespan_seconds(text) == pytest.approx(seconds, abs=1e-7)


@pytest.mark.parametrize(
    "text",
    [
        "11:22:66.6540000",  # the document's own impossible value: 66 seconds
        "10:60:00.0000000",  # 60 minutes
        "1.24:00:00",  # 24 hours beside a day count
        "12:00",
        "12:00:00.12345678",  # more than 7 fraction digits
        "",
        "n/a",
        None,
        3600,
    ],
)
def test_impossible_or_foreign_time_spans_give_none(text):
    assert timespan_seconds(text) is None


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2000-01-23T04:56:07.000+00:00", "2000-01-23T04:56:07.000+00:00"),  # kept as written
        ("2000-01-23T04:56:07Z", "2000-01-23T04:56:07Z"),
        ("2000-01-23T06:56:07.000+02:00", "2000-01-23T04:56:07+00:00"),
        ("2000-01-22T23:56:07-05:00", "2000-01-23T04:56:07+00:00"),
        ("2000-01-23T04:56:07", "2000-01-23T04:56:07+00:00"),  # no offset: UTC
        ("not a date", None),
        ("", None),
        (None, None),
    ],
)
def test_date_times_in_utc(text, utc):
    assert utc_iso(text) == utc


@pytest.mark.parametrize("text", ["2000-13-40T04:56:07.000+00:00", "garbageZ", "2000-01-23T25:00:00Z"])
def test_utc_looking_garbage_is_not_kept(text):
    assert utc_iso(text) is None


def test_net_min_value_means_no_date():
    from tap_ekran.client import is_unset_date

    assert is_unset_date("0001-01-01T00:00:00") and is_unset_date("0001-01-01T00:00:00.000+00:00")
    assert is_unset_date(None) and is_unset_date("")
    assert not is_unset_date("2000-01-23T04:56:07.000+00:00")


def _throttled(retry_after: str | None):
    import requests
    from singer_sdk.exceptions import RetriableAPIError

    response = requests.Response()
    response.status_code = 429
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return RetriableAPIError("429", response)


def test_retry_waits_follow_retry_after_else_double():
    import datetime as dt
    import email.utils

    from tap_ekran.tap import TapEkran

    tap = TapEkran(config={"api_url": "https://ekran.example.com", "api_token": "t", "retry_backoff_seconds": 0.5},
                   parse_env_config=False)
    waits = tap.streams["sessions"].backoff_wait_generator()
    next(waits)
    in_a_minute = email.utils.format_datetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=60), usegmt=True)
    assert waits.send(_throttled(None)) == 0.5
    assert waits.send(_throttled("3")) == 3.0
    assert waits.send(_throttled(None)) == 2.0  # 0.5 * 2**2: the third retry
    assert 55 <= waits.send(_throttled(in_a_minute)) <= 60
    assert waits.send(_throttled("86400")) == 600.0  # capped
    assert waits.send(_throttled("soon")) == 0.5 * 2**5
