"""tap-beyondtrust without a server: from a state and a config to the exact
request parameters of every windowed stream (the windows are the paginator's
tokens), and the bookmark held at a window's start while it is read, moved to
its end (with a STATE message) once it has been read whole."""

from __future__ import annotations

import datetime as dt
import io
import json
from contextlib import redirect_stdout

import pytest

from tap_beyondtrust.streams import SessionIds, license_period, unended_range
from tap_beyondtrust.tap import TapBeyondTrust

UTC = dt.timezone.utc
DAY = 86400
#: the sync's start in every case: never the wall clock
NOW = int(dt.datetime(2024, 11, 5, 12, 0, tzinfo=UTC).timestamp())
BASE = {"api_url": "https://support.example.com", "client_id": "c", "client_secret": "s", "start_date": "2024-11-03"}


def ts(text):
    return int(dt.datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def iso(text):
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC).isoformat()


def stream_of(name, state=None, **config):
    tap = TapBeyondTrust(config={**BASE, **config}, state=state or {}, parse_env_config=False)
    stream = tap.streams[name]
    stream.started_at = NOW
    return stream


def bookmark(stream, value, key):
    return {"bookmarks": {stream: {"replication_key": key, "replication_key_value": value}}}


def requests_of(stream, context=None):
    """The parameters of every request the stream's paginator walks, in order."""
    paginator = stream.get_new_paginator(context)
    sent = []
    while not paginator.finished:
        sent.append(stream.get_url_params(context, paginator.current_value))
        paginator.advance(None)
    return sent


def windows(report, param, bounds, **extra):
    return [{"generate_report": report, param: lo, "duration": hi - lo, **extra} for lo, hi in bounds]


DAYS = [(ts("2024-11-03"), ts("2024-11-04")), (ts("2024-11-04"), ts("2024-11-05")), (ts("2024-11-05"), NOW)]


def test_a_first_sync_asks_day_windows_from_start_date_to_the_syncs_start():
    assert requests_of(stream_of("support_sessions")) == windows("SupportSession", "end_time", DAYS)
    assert requests_of(stream_of("support_session_listing")) == windows("SupportSessionListing", "end_time", DAYS)


def test_from_a_bookmark_less_lookback_seconds_and_never_before_start_date():
    state = bookmark("support_sessions", iso("2024-11-04T06:00:00"), "end_time")
    lo = ts("2024-11-04T06:00:00") - 60
    assert requests_of(stream_of("support_sessions", state)) == windows(
        "SupportSession", "end_time", [(lo, lo + DAY), (lo + DAY, NOW)])
    assert requests_of(stream_of("support_sessions", state, lookback_seconds=0, window_days=2)) == windows(
        "SupportSession", "end_time", [(lo + 60, NOW)])
    old = bookmark("support_sessions", iso("2024-10-01T00:00:00"), "end_time")
    assert requests_of(stream_of("support_sessions", old, start_date="2024-11-05"))[0]["end_time"] == \
        ts("2024-11-05") - 60, "start_date after the bookmark wins, less the look-back"
    other_key = bookmark("support_sessions", iso("2024-11-04T06:00:00"), "window_end")
    assert requests_of(stream_of("support_sessions", other_key)) == windows("SupportSession", "end_time", DAYS)


def test_end_date_ends_the_windows_a_date_at_the_midnight_after_it():
    assert requests_of(stream_of("support_sessions", end_date="2024-11-03")) == windows(
        "SupportSession", "end_time", DAYS[:1])
    assert requests_of(stream_of("support_sessions", end_date="2024-11-04T10:00:00Z")) == windows(
        "SupportSession", "end_time", [DAYS[0], (ts("2024-11-04"), ts("2024-11-04T10:00:00"))])
    done = bookmark("support_sessions", iso("2024-11-05T00:00:00"), "end_time")
    assert requests_of(stream_of("support_sessions", done, end_date="2024-11-04", lookback_seconds=0)) == []


def test_filters_are_sent_on_every_window_only_when_set():
    assert requests_of(stream_of("support_sessions", support_session_limit="rep:4")) == windows(
        "SupportSession", "end_time", DAYS, limit="rep:4")
    assert requests_of(stream_of("support_teams", team_id=2)) == windows(
        "SupportTeam", "start_time", DAYS, team_id=2)
    assert requests_of(stream_of("team_activity")) == windows("SupportTeam", "start_time", DAYS)
    assert requests_of(stream_of("jump_items", jump_group="shared:2", jump_performed_by="user:5")) == windows(
        "JumpItem", "start_time", DAYS, jump_group="shared:2", performed_by="user:5")
    assert requests_of(stream_of("vault_account_activity", vault_limit="team:all")) == windows(
        "VaultAccountActivity", "start_time", DAYS, limit="team:all")


def test_each_survey_window_is_asked_by_rep_then_by_team_unless_one_is_named():
    both = requests_of(stream_of("customer_exit_surveys", survey_site_id=1))
    assert both == [{"generate_report": "SupportCustExitSurvey", "end_time": lo, "duration": hi - lo,
                     "report_type": kind, "id": "all", "site_id": 1} for lo, hi in DAYS for kind in ("rep", "team")]
    assert requests_of(stream_of("rep_exit_surveys", survey_rep_id=5)) == [
        {"generate_report": "SupportRepExitSurvey", "end_time": lo, "duration": hi - lo, "report_type": "rep",
         "id": "5"} for lo, hi in DAYS]
    assert {(r["report_type"], r["id"]) for r in requests_of(stream_of("customer_exit_surveys",
                                                                       survey_team_id=3))} == {("team", "3")}


def test_summary_windows_are_utc_days_per_report_type_partition():
    state = {"bookmarks": {"support_session_summary": {"partitions": [
        {"context": {"report_type": "rep"}, "replication_key": "period_start",
         "replication_key_value": iso("2024-11-05T00:00:00")}]}}}
    stream = stream_of("support_session_summary", state)
    # the bookmark less the look-back, floored to its day: the day before is read again
    assert requests_of(stream, {"report_type": "rep"}) == windows(
        "SupportSessionSummary", "end_time", DAYS[1:], report_type="rep")
    assert requests_of(stream, {"report_type": "site"}) == windows(
        "SupportSessionSummary", "end_time", DAYS, report_type="site")


def test_archive_listing_asks_one_utc_date_per_request():
    state = bookmark("archive_listing", iso("2024-11-04T10:00:00"), "time")
    assert requests_of(stream_of("archive_listing", state)) == [
        {"generate_report": "ArchiveListing", "date": "2024-11-04"},
        {"generate_report": "ArchiveListing", "date": "2024-11-05"}]


def test_the_unended_pass_windows_and_their_requests():
    config = {**BASE, "lookback_seconds": 60, "unended_session_days": 3, "window_days": 1}
    assert unended_range(config, None, NOW) == (ts("2024-11-03"), NOW), "first sync: from start_date"
    checked = iso("2024-11-05T06:00:00")
    assert unended_range({**config, "start_date": "2024-10-01"}, checked, NOW) == (NOW - 3 * DAY, NOW), \
        "at least unended_session_days back"
    assert unended_range({**config, "start_date": "2024-10-01"}, iso("2024-10-20T00:00:00"), NOW) == (
        ts("2024-10-20") - 60, NOW), "from the last pass when that is longer ago"
    assert unended_range(config, checked, NOW) == (ts("2024-11-03"), NOW), "never before start_date"
    assert unended_range({**config, "end_date": "2024-11-02"}, None, NOW) is None

    sessions = stream_of("support_sessions", support_session_limit="site:2")
    started = sessions.unended_windows(None)
    assert [(w.lo, w.hi) for w in started] == DAYS
    assert sessions.get_url_params(None, started[0]) == {
        "generate_report": "SupportSession", "start_time": DAYS[0][0], "duration": DAY, "limit": "site:2"}
    assert sessions.get_url_params(None, SessionIds("a,b")) == {"generate_report": "SupportSession", "lsids": "a,b"}


def test_license_usage_asks_one_period_from_the_bookmark_or_start_date():
    config = {**BASE, "license_group_by": "day", "start_date": "2024-11-03T05:30:00Z"}
    assert license_period(config, None, NOW) == (ts("2024-11-03"), 0), "duration 0: up to now"
    assert license_period({**config, "license_group_by": "month"}, None, NOW) == (ts("2024-11-01"), 0)
    assert license_period({**config, "license_group_by": "hour"}, None, NOW) == (ts("2024-11-03T05:00:00"), 0)
    assert license_period(config, iso("2024-11-05T00:00:00"), NOW) == (ts("2024-11-05"), 0)
    assert license_period({**config, "end_date": "2024-11-03"}, None, NOW) == (ts("2024-11-03"), DAY)
    assert license_period({**config, "end_date": "2024-11-02"}, None, NOW) is None
    stream = stream_of("license_usage")
    assert stream.get_url_params(None, (ts("2024-11-03"), 0)) == {
        "generate_report": "LicenseUsage", "start_time": ts("2024-11-03"), "duration": 0, "group_by": "day"}


@pytest.mark.parametrize("name", ["support_sessions", "jump_items", "support_session_listing"])
def test_the_bookmark_holds_at_the_window_start_and_moves_after_each_window(name):
    """singer-sdk's own sync path with the answers replaced: inside a window the
    bookmark never shows a row's value, and one STATE message follows each window."""
    stream = stream_of(name, lookback_seconds=0, unended_session_days=0)
    key = stream.replication_key
    seen = []

    def read_report(context, window):
        for n in range(3):
            held = stream.get_context_state(context).get("replication_key_value")
            seen.append((window.lo, held))
            # rows in no order, later than the window's end, as the appliance sends them
            yield {"lsid": f"{window.lo}-{n}", "event_id": f"{window.lo}-{n}", key: iso("2030-01-01T00:00:00"),
                   "window_start": None, "window_end": iso("2030-01-01T00:00:00")}

    stream.read_report = read_report
    stream.unended_records = lambda context: iter(())
    out = io.TextIOWrapper(io.BytesIO())
    with redirect_stdout(out):
        stream.sync()
    out.flush()
    messages = [json.loads(line) for line in out.buffer.getvalue().splitlines()]
    for lo, held in seen:
        assert held in (None, dt.datetime.fromtimestamp(lo, UTC).isoformat()), "held at the window's start"
    states = [m["value"]["bookmarks"][name]["replication_key_value"] for m in messages if m["type"] == "STATE"]
    ends = [dt.datetime.fromtimestamp(hi, UTC).isoformat() for _, hi in DAYS]
    assert states[:3] == ends and set(states[3:]) <= {ends[-1]}, "a STATE after each window, at its end"
    records = [i for i, m in enumerate(messages) if m["type"] == "RECORD"]
    first_state = next(i for i, m in enumerate(messages) if m["type"] == "STATE")
    assert len(records) == 9 and records[2] < first_state < records[3], "the STATE follows its window's rows"


def test_the_unended_pass_moves_only_its_own_mark_not_the_bookmark(monkeypatch):
    """support_session_listing's rows of the unended pass carry start_time windows
    (window_end before the sync's end): the bookmark stays where the windows left it."""
    stream = stream_of("support_session_listing", unended_session_days=0, lookback_seconds=0)
    stream.read_report = lambda context, window: iter(())
    asked = []

    def fetch_rows(stream_, context, params, tags, root, build):
        asked.append(params)
        if "end_time" in params:  # the sessions that ended since: none
            return []
        return [{"lsid": f"open-{params['start_time']}", "lseq": 1, "has_recording": 0, "external_key": None,
                 "extra": None}]

    monkeypatch.setattr("tap_beyondtrust.streams.fetch_rows", fetch_rows)
    out = io.TextIOWrapper(io.BytesIO())
    with redirect_stdout(out):
        stream.sync()
    out.flush()
    messages = [json.loads(line) for line in out.buffer.getvalue().splitlines()]
    assert [p.get("start_time") for p in asked] == [None, *(lo for lo, _ in DAYS)]
    assert [r["record"]["window_end"] for r in messages if r["type"] == "RECORD"] == [
        dt.datetime.fromtimestamp(hi, UTC).isoformat() for _, hi in DAYS]
    states = [m["value"]["bookmarks"]["support_session_listing"] for m in messages if m["type"] == "STATE"]
    end = dt.datetime.fromtimestamp(NOW, UTC).isoformat()
    checked = [s.get("unended_checked_to") for s in states if s.get("unended_checked_to")]
    assert checked[:3] == [dt.datetime.fromtimestamp(hi, UTC).isoformat() for _, hi in DAYS]
    assert all(s.get("replication_key_value") in (None, end) for s in states), "the bookmark never moves back"
    assert states[-1]["replication_key_value"] == end
