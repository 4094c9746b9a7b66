"""tap-controlio's windows without a server: from a state and a config to the
request parameters the streams send, page after page (the window is the
paginator's token), and the waits between retries."""

from __future__ import annotations

import datetime as dt
import json
import typing as t

import pytest
import requests

from tap_controlio.tap import TapControlio

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 10, 15, 30, tzinfo=UTC)
BASE = {"api_token": "unit-token", "start_date": "2026-03-01"}


def response(rows: list[dict]) -> requests.Response:
    answer = requests.Response()
    answer.status_code = 200
    answer.url = "https://backend.controlio.net/api/v1/statistics/x"
    answer._content = json.dumps({"data": rows}).encode()
    return answer


def requests_sent(stream_name: str, config: dict, state: dict | None = None, *,
                  rows: t.Callable[[dict], list[dict]] = lambda params: [], context: dict | None = None,
                  now: dt.datetime = NOW) -> list[dict]:
    """The parameters of every request a sync of ``stream_name`` sends, each
    answered with ``rows(params)``."""
    tap = TapControlio(config={**BASE, **config}, state=state or {})
    stream = tap.streams[stream_name]
    paginator = stream.window_paginator(context, now)
    sent = []
    while not paginator.finished:
        params = stream.get_url_params(context, paginator.current_value)
        sent.append(params)
        paginator.advance(response(rows(params)))
        assert len(sent) < 100, "pagination does not end"
    return sent


def bookmark(stream: str, value: str, **more: str) -> dict:
    return {"bookmarks": {stream: {"replication_key": "window_start", "replication_key_value": value, **more}}}


def days(params: list[dict]) -> list[tuple]:
    return [(p["start_time"], p.get("end_time")) for p in params]


def test_a_first_sync_reads_day_windows_from_start_date_to_today():
    sent = requests_sent("logons", {})
    assert days(sent) == [(f"2026-03-{d:02}", f"2026-03-{d:02}") for d in range(1, 11)]
    assert all(p["offset"] == 0 and p["limit"] == 10000 and p["sort_direction"] == "asc" for p in sent)


def test_window_days_and_offset_pages_inside_each_window():
    # 5-row pages: window 1 has 12 rows (pages at 0, 5, 10), window 2 none, window 3 five (0, 5)
    counts = {"2026-03-01": 12, "2026-03-04": 0, "2026-03-07": 5, "2026-03-10": 1}

    def rows(params):
        left = counts[params["start_time"]] - params["offset"]
        return [{"user_id": 1}] * max(0, min(left, 5))

    sent = requests_sent("logons", {"window_days": 3, "page_size": 5}, rows=rows)
    assert [(p["start_time"], p["end_time"], p["offset"]) for p in sent] == [
        ("2026-03-01", "2026-03-03", 0), ("2026-03-01", "2026-03-03", 5), ("2026-03-01", "2026-03-03", 10),
        ("2026-03-04", "2026-03-06", 0),  # an empty window ends itself, not the stream
        ("2026-03-07", "2026-03-09", 0), ("2026-03-07", "2026-03-09", 5),
        ("2026-03-10", "2026-03-10", 0),  # the last window ends today
    ]


def test_a_later_sync_starts_lookback_days_before_the_bookmark_never_before_start_date():
    state = bookmark("audit_log", "2026-03-08")
    assert days(requests_sent("audit_log", {}, state))[0] == ("2026-03-07", "2026-03-07")
    assert days(requests_sent("audit_log", {"lookback_days": 0}, state)) == [
        ("2026-03-08", "2026-03-08"), ("2026-03-09", "2026-03-09"), ("2026-03-10", "2026-03-10")]
    assert days(requests_sent("audit_log", {"lookback_days": 3, "window_days": 7}, state)) == [
        ("2026-03-05", "2026-03-10")]
    assert days(requests_sent("audit_log", {"lookback_days": 30}, state))[0] == ("2026-03-01", "2026-03-01")
    # a bookmark of another replication key is not this stream's
    other = {"bookmarks": {"audit_log": {"replication_key": "other", "replication_key_value": "2026-03-08"}}}
    assert days(requests_sent("audit_log", {}, other))[0] == ("2026-03-01", "2026-03-01")


@pytest.mark.parametrize(
    ("end_date", "last_day"),
    [
        ("2026-03-04", "2026-03-04"),  # an ISO date: that day is synced
        ("2026-03-04T00:00:00Z", "2026-03-03"),  # exclusive: the day that starts at the end is not
        ("2026-03-04T00:00:01Z", "2026-03-04"),  # every day that starts before it
        ("2026-03-04T12:00:00", "2026-03-04"),  # no offset: UTC
        ("2026-03-04T01:00:00+02:00", "2026-03-03"),  # 23:00 UTC on the 3rd
        ("2026-03-25", "2026-03-10"),  # never past today
    ],
)
def test_end_date_is_exclusive_and_whole_days_that_start_before_it_are_read(end_date, last_day):
    sent = requests_sent("logons", {"end_date": end_date})
    assert sent[0]["start_time"] == "2026-03-01"
    assert sent[-1]["end_time"] == last_day


@pytest.mark.parametrize(
    ("start_date", "first_day"),
    [("2026-03-05", "2026-03-05"), ("2026-03-05T23:59:00Z", "2026-03-05"),
     ("2026-03-05T01:00:00+02:00", "2026-03-04")],  # 23:00 UTC on the 4th
)
def test_start_date_is_read_from_the_utc_day_it_falls_in(start_date, first_day):
    assert requests_sent("logons", {"start_date": start_date})[0]["start_time"] == first_day


def test_the_default_start_is_30_days_before_today():
    tap_config = {"api_token": "unit-token"}
    tap = TapControlio(config=tap_config)
    windows = tap.streams["logons"].windows(None, NOW)
    assert (windows[0].start, windows[-1].end) == (dt.date(2026, 2, 8), dt.date(2026, 3, 10))
    assert len(windows) == 31


def test_a_bookmark_past_end_date_sends_no_request():
    assert requests_sent("logons", {"end_date": "2026-03-03"}, bookmark("logons", "2026-03-09")) == []


def test_a_cursor_report_resumes_at_its_saved_cursor_then_follows_prev():
    state = bookmark("detailed_activities", "2026-03-09", prev="2026-03-09T10:00:00.000001Z,3,1")

    def rows(params):
        if params["start_time"] == "2026-03-09" and params.get("prev", "").startswith("2026-03-09T10"):
            return [{"start_time": "2026-03-09T11:00:00.5Z", "user_id": 4, "computer_id": 2}] * 2  # full page
        return [{"start_time": "2026-03-09T12:00:00Z", "user_id": 5, "computer_id": 1}]

    sent = requests_sent("detailed_activities", {"page_size": 2, "lookback_days": 0}, state, rows=rows)
    assert [(p["start_time"], p["end_time"], p.get("prev")) for p in sent] == [
        ("2026-03-09", "2026-03-09", "2026-03-09T10:00:00.000001Z,3,1"),
        ("2026-03-09", "2026-03-09", "2026-03-09T11:00:00.5Z,4,2"),
        ("2026-03-10", "2026-03-10", None),  # the next window from its start
    ]
    assert all("offset" not in p and p["limit"] == 2 for p in sent)
    # a saved cursor of another window than the first one read is not used
    sent = requests_sent("detailed_activities", {"page_size": 2}, state, rows=rows)
    assert [(p["start_time"], p.get("prev")) for p in sent][:1] == [("2026-03-08", None)]


def test_one_day_reports_send_start_time_only_and_full_tables_no_dates():
    sent = requests_sent("timeline_raw", {"window_days": 5, "start_date": "2026-03-08"})
    assert [p["start_time"] for p in sent] == ["2026-03-08", "2026-03-09", "2026-03-10"]
    assert all("end_time" not in p and p["limit"] == 25 for p in sent)
    full = requests_sent("users_activities", {}, rows=lambda params: [{"user_id": 1}] * (params["offset"] == 0))
    assert full == [{"sort_direction": "asc", "limit": 10000, "offset": 0}]
    one_page = requests_sent("productivity", {"window_days": 10})
    assert one_page == [{"sort_direction": "asc", "start_time": "2026-03-01", "end_time": "2026-03-10"}]


def test_a_child_report_reads_from_its_own_partition_state():
    state = {"bookmarks": {"timeline_raw_by_user": {"partitions": [
        {"context": {"user_id": 3}, "replication_key": "window_start", "replication_key_value": "2026-03-09"}]}}}
    assert [p["start_time"] for p in requests_sent("timeline_raw_by_user", {}, state, context={"user_id": 3})] == [
        "2026-03-08", "2026-03-09", "2026-03-10"]
    assert len(requests_sent("timeline_raw_by_user", {}, state, context={"user_id": 4})) == 10


def test_the_params_depend_only_on_the_context_and_the_token():
    tap = TapControlio(config={**BASE, "users": [2, 5], "level": 3})
    stream = tap.streams["operations_by_days"]
    first = stream.window_paginator(None, NOW).current_value
    assert stream.get_url_params(None, first) == stream.get_url_params(None, first) == {
        "sort_direction": "asc", "start_time": "2026-03-01", "end_time": "2026-03-01", "limit": 10000,
        "offset": 0, "users": "2,5", "level": 3}


def error(status: int, retry_after: str | None = None) -> Exception:
    answer = requests.Response()
    answer.status_code = status
    if retry_after is not None:
        answer.headers["Retry-After"] = retry_after
    exception = requests.HTTPError("retriable")
    exception.response = answer
    return exception


def test_retry_waits_double_from_the_setting_and_retry_after_wins_with_one_cap():
    def logons(first_wait: float) -> t.Any:
        return TapControlio(config={**BASE, "retry_backoff_seconds": first_wait}).streams["logons"]

    retry_wait = logons(2.0).retry_wait
    assert [retry_wait(error(503), n) for n in range(4)] == [2.0, 4.0, 8.0, 16.0]
    assert retry_wait(error(503), 12) == 600.0  # the one cap on a single wait
    assert retry_wait(error(429, "7"), 0) == 7.0
    assert retry_wait(error(429, "7"), 5) == 7.0  # Retry-After, whatever the retry
    assert retry_wait(error(429, "3600"), 0) == 600.0
    assert retry_wait(error(429, "-5"), 0) == 0.0
    assert retry_wait(error(429, "soon"), 1) == 4.0  # unreadable: the doubling
    assert logons(0.25).retry_wait(requests.ConnectionError("reset"), 0) == 0.25
    later = (dt.datetime.now(UTC) + dt.timedelta(hours=2)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert retry_wait(error(503, later), 0) == 600.0
