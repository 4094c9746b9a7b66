"""tap-activtrak without a server: from a state and a config to the requests a
sync sends (the paginators' tokens and get_url_params), the config rules, and
the waits between attempts."""

from __future__ import annotations

import datetime as dt
import io
import json
import typing as t

import pytest
import requests
from singer_sdk.exceptions import ConfigValidationError, RetriableAPIError

from tap_activtrak.streams import ActivityLogStream, DayWindow, WindowPagePaginator, WorkingHoursStream
from tap_activtrak.tap import TapActivTrak

TOKEN = "unit-test-token-3c1d"
BASE = {"api_token": TOKEN, "start_date": "2026-01-01"}


def stream(name: str, state: dict | None = None, **config: t.Any) -> t.Any:
    """The stream as a sync finds it when it starts: with its state, and the
    starting value singer-sdk derives from the bookmark and start_date."""
    tap = TapActivTrak(config={**BASE, **config}, state=state or {}, parse_env_config=False)
    found = tap.streams[name]
    found.state_manager.write_starting_replication_value(
        context=None, replication_method=found.replication_method, replication_key=found.replication_key,
        config=dict(found.config), compare_start_date_fn=found.compare_start_date)
    return found


def bookmark(name: str, **values: t.Any) -> dict:
    return {"bookmarks": {name: {"replication_key": "date", **values}}}


def response(payload: dict, path: str = "/reports/v2/activitylog") -> requests.Response:
    answer = requests.Response()
    answer.status_code = 200
    answer.url = f"https://api.activtrak.com{path}"
    answer.raw = io.BytesIO(json.dumps(payload).encode())
    return answer


def windows(working_hours: WorkingHoursStream) -> list[tuple[str, str, int]]:
    """Every request of a working-hours sync whose windows hold one page each."""
    paginator = working_hours.paginator_for(None)
    window: DayWindow | None = paginator.current_value
    sent = []
    while window is not None:
        params = working_hours.get_url_params(None, window)
        assert params["pageSize"] == 1000
        sent.append((params["from"], params["to"], params["page"]))
        window = paginator.following(window)
    return sent


# ------------------------------------------------------------------ working hours
def test_first_sync_windows_from_start_date_to_the_day_of_end_date():
    users = stream("working_hours_users", end_date="2026-01-05", window_days=2)
    assert windows(users) == [("2026-01-01", "2026-01-02", 1), ("2026-01-03", "2026-01-04", 1),
                              ("2026-01-05", "2026-01-05", 1)]


@pytest.mark.parametrize(
    ("end_date", "timezone", "last"),
    [
        ("2026-01-05", "UTC", "2026-01-05"),  # a date: that day is synced
        ("2026-01-05T12:00:00Z", "UTC", "2026-01-05"),  # the 5th starts before noon on the 5th
        ("2026-01-05T00:00:00Z", "UTC", "2026-01-04"),  # exclusive: the 5th starts at the end
        ("2026-01-05T00:00:00+09:00", "UTC", "2026-01-04"),  # 15:00 UTC on the 4th
        ("2026-01-05", "Asia/Tokyo", "2026-01-06"),  # the server's 6th starts at 15:00 UTC on the 5th
        ("2026-01-05", "Etc/GMT+5", "2026-01-05"),  # the server's 5th ends at 05:00 UTC on the 6th
    ],
)
def test_end_date_ends_at_the_last_server_day_that_starts_before_it(end_date, timezone, last):
    computers = stream("working_hours_computers", start_date="2026-01-03", end_date=end_date, timezone=timezone)
    assert windows(computers)[-1][1] == last


@pytest.mark.parametrize(("lookback_days", "first"), [(0, "2026-01-04"), (1, "2026-01-03"), (3, "2026-01-01")])
def test_a_sync_rereads_the_bookmarks_day_and_the_lookback_days_before_it(lookback_days, first):
    state = bookmark("working_hours_users", replication_key_value="2026-01-04T00:00:00+00:00")
    users = stream("working_hours_users", state, end_date="2026-01-06", lookback_days=lookback_days)
    days = [window[0] for window in windows(users)]
    assert days[0] == first and days[-1] == "2026-01-06"
    assert len(days) == len(set(days)) == (dt.date(2026, 1, 6) - dt.date.fromisoformat(first)).days + 1


def test_the_lookback_never_reaches_before_start_date():
    state = bookmark("working_hours_users", replication_key_value="2026-01-02T00:00:00+00:00")
    users = stream("working_hours_users", state, end_date="2026-01-03", lookback_days=5)
    assert windows(users) == [("2026-01-01", "2026-01-01", 1), ("2026-01-02", "2026-01-02", 1),
                              ("2026-01-03", "2026-01-03", 1)]


def test_a_bookmark_past_end_date_reads_the_backfills_own_period():
    state = bookmark("working_hours_users", replication_key_value="2026-02-01T00:00:00+00:00")
    users = stream("working_hours_users", state, start_date="2026-01-02", end_date="2026-01-03")
    assert windows(users) == [("2026-01-02", "2026-01-02", 1), ("2026-01-03", "2026-01-03", 1)]


def test_pages_within_a_window_then_the_next_window():
    paginator = WindowPagePaginator(dt.date(2026, 1, 1), dt.date(2026, 1, 3), window_days=2, page_size=1000)
    rows = [{"date": "2026-01-01T00:00:00"}]
    path = "/reports/v2/workinghours/users"
    tokens = [paginator.current_value]
    for answer in ({"activity": rows, "total": 2500}, {"activity": rows, "total": 2500},
                   {"activity": rows, "total": 2500}, {"activity": [], "total": 0}):
        paginator.advance(response(answer, path))
        tokens.append(paginator.current_value)
    assert tokens == [DayWindow(dt.date(2026, 1, 1), dt.date(2026, 1, 2), 1),
                      DayWindow(dt.date(2026, 1, 1), dt.date(2026, 1, 2), 2),
                      DayWindow(dt.date(2026, 1, 1), dt.date(2026, 1, 2), 3),
                      DayWindow(dt.date(2026, 1, 3), dt.date(2026, 1, 3), 1),
                      DayWindow(dt.date(2026, 1, 3), dt.date(2026, 1, 3), 1)]
    assert paginator.finished


def test_the_entity_filter_is_in_every_request():
    computers = stream("working_hours_computers", end_date="2026-01-01", group_id=4)
    window = computers.paginator_for(None).current_value
    assert computers.get_url_params(None, window) == {
        "from": "2026-01-01", "to": "2026-01-01", "page": 1, "pageSize": 1000, "groupId": 4}


# ------------------------------------------------------------------ activity log
def first_request(state: dict | None = None, **config: t.Any) -> dict:
    log: ActivityLogStream = stream("activity_log", state, **config)
    return log.get_url_params(None, log.first_page(None))


def test_the_first_sync_starts_at_start_date_and_the_next_at_the_cursor():
    assert first_request() == {"pageSize": 1000, "startDate": "2026-01-01"}
    state = bookmark("activity_log", replication_key_value="2026-01-04T10:00:00+00:00", cursor="abc")
    assert first_request(state) == {"pageSize": 1000, "cursor": "abc"}
    # no cursor yet: from the bookmark's day
    state = bookmark("activity_log", replication_key_value="2026-01-04T10:00:00+00:00")
    assert first_request(state, user_id=7) == {"pageSize": 1000, "startDate": "2026-01-04", "userId": 7}


def test_the_cursor_is_the_token_of_every_later_request():
    log: ActivityLogStream = stream("activity_log", end_date="2026-01-05T06:00:00Z")
    paginator = log.get_new_paginator()
    paginator.advance(response({"activity": [{"logId": 1}], "cursor": "next-1"}))
    assert log.get_url_params(None, paginator.current_value) == {
        "pageSize": 1000, "cursor": "next-1", "endDate": "2026-01-05"}
    paginator.advance(response({"activity": [], "cursor": "next-1"}))
    assert paginator.finished


@pytest.mark.parametrize(
    ("end_date", "end_day", "key"),
    [
        ("2026-01-05", "2026-01-05", "2026-01-05"),
        ("2026-01-05T06:30:00Z", "2026-01-05", "2026-01-05T06:30:00+00:00"),
        ("2026-01-05T00:00:00", "2026-01-04", "2026-01-05T00:00:00+00:00"),
    ],
)
def test_a_bounded_sync_reads_from_start_date_and_keeps_its_cursor_apart(end_date, end_day, key):
    regular = {"replication_key_value": "2026-01-09T10:00:00+00:00", "cursor": "regular"}
    assert first_request(bookmark("activity_log", **regular), end_date=end_date) == {
        "pageSize": 1000, "startDate": "2026-01-01", "endDate": end_day}
    backfill = {"end_date": key, "cursor": "backfill"}
    state = bookmark("activity_log", **regular, backfill_cursor=backfill)
    assert first_request(state, end_date=end_date) == {"pageSize": 1000, "cursor": "backfill", "endDate": end_day}
    # a cursor taken under another end is not used
    other = bookmark("activity_log", **regular, backfill_cursor={"end_date": "2026-01-06", "cursor": "other"})
    assert "cursor" not in first_request(other, end_date=end_date)


def test_a_date_time_end_date_stops_the_log_at_that_instant():
    log: ActivityLogStream = stream("activity_log", end_date="2026-01-05T06:00:00+01:00", timezone="Asia/Tokyo")
    # 05:00 UTC is 14:00 in Tokyo: the server's naive times on either side
    dates = ["2026-01-05T13:59:59", "2026-01-05T14:00:00", "2026-01-05T23:00:00", "not a time"]
    rows = [{"logId": n, "date": date} for n, date in enumerate(dates)]
    kept = list(log.parse_response(response({"activity": rows, "cursor": "c1"})))
    assert [row["logId"] for row in kept] == [0, 3]  # a time that does not parse is kept (and lands in extra)
    assert log.get_context_state(None)["backfill_cursor"] == {"end_date": "2026-01-05T05:00:00+00:00",
                                                              "cursor": "c1"}
    assert "cursor" not in log.get_context_state(None)


# ------------------------------------------------------------------ config rules
@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"window_days": 0}, "window_days"),
        ({"lookback_days": -1}, "lookback_days"),
        ({"max_retries": 0}, "max_retries"),
        ({"request_timeout": 0}, "request_timeout"),
        ({"retry_backoff_seconds": -1}, "retry_backoff_seconds"),
        ({"api_url": "ftp://example.com"}, "api_url"),
        ({"api_token": "   "}, "api_token"),
        ({"end_date": "2025-12-31"}, "end_date"),
        ({"end_date": "2026-01-01T00:00:00Z"}, "end_date"),  # exclusive: an empty period
        ({"start_date": "soon"}, "start_date"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"user_id": 1, "computer_id": 2}, "user_id, group_id, computer_id"),
    ],
)
def test_bad_config_names_the_setting(change, setting):
    with pytest.raises(ConfigValidationError) as raised:
        TapActivTrak(config={**BASE, **change}, parse_env_config=False)
    errors = raised.value.errors
    assert len(errors) == 1 and setting in errors[0]
    assert TOKEN not in " ".join(errors)


def test_a_one_day_backfill_and_the_defaults_are_valid():
    tap = TapActivTrak(config={**BASE, "end_date": "2026-01-01"}, parse_env_config=False)
    assert {k: tap.config[k] for k in ("lookback_days", "window_days", "max_retries", "request_timeout")} == {
        "lookback_days": 1, "window_days": 1, "max_retries": 5, "request_timeout": 300}
    assert tap.config["emit_activate_version_messages"] is False


# ------------------------------------------------------------------ waits between attempts
def failure(status: int, retry_after: str | None = None) -> RetriableAPIError:
    answer = response({})
    answer.status_code = status
    if retry_after is not None:
        answer.headers["Retry-After"] = retry_after
    return RetriableAPIError("failed", answer)


def test_waits_double_from_retry_backoff_seconds_and_retry_after_wins():
    log = stream("activity_log", retry_backoff_seconds=1.5)
    waits = log.backoff_wait_generator()
    next(waits)  # what the backoff decorator does first
    sent = [waits.send(failure(503)), waits.send(failure(429, "7")), waits.send(failure(503)),
            waits.send(requests.exceptions.ConnectionError())]
    assert sent == [1.5, 7.0, 6.0, 12.0]
    assert log.backoff_max_tries() == 5


def test_one_cap_on_every_single_wait():
    log = stream("activity_log", retry_backoff_seconds=1.0)
    assert log.MAX_WAIT_SECONDS == 600.0
    assert log.retry_wait(failure(429, "100000"), 0) == 600.0
    assert log.retry_wait(failure(503), 14) == 600.0  # 1 s doubled 14 times: 16,384 s
    soon = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert log.retry_wait(failure(429, soon), 0) == 600.0
    assert log.retry_wait(failure(429, "Thu, 01 Jan 1970 00:00:00 GMT"), 0) == 0.0
    assert log.retry_wait(failure(429, "soon"), 1) == 2.0  # unreadable: the doubling
