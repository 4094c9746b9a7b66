"""tap-controlio against the Controlio sandbox: counts, windows, cursors,
state, children, faults and errors."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.taputil import assert_no_secret, discover, run_tap, run_tap_until, select_streams

TAP = "tap-controlio"
TOKEN = "sandbox-controlio-token"
RAW = "/statistics/detailedActivities"
#: a sandbox clock for the tests whose kill point depends on how the rows fall on days
FIXED_TODAY = "2026-01-10"


_CATALOG: dict = {}


def catalog_for(streams):
    """The discovered catalog (the same for every sandbox) with only ``streams`` selected."""
    if not _CATALOG:
        _CATALOG.update(discover(TAP, {"api_token": TOKEN}))
    return select_streams(_CATALOG, streams)


def sync(config, *, streams=None, **kwargs):
    catalog = catalog_for(streams) if streams is not None else None
    return run_tap(TAP, config, catalog=catalog, **kwargs)


def sync_until(config, *, streams, **kwargs):
    return run_tap_until(TAP, config, catalog=catalog_for(streams), **kwargs)


def config_for(server, **extra):
    return {
        "api_url": server.url + "/",  # a trailing slash is tolerated
        "api_token": TOKEN,
        "start_date": server.app.first_day.isoformat(),
        # the sandbox's last day, whatever the clock says when the tap runs (never one day more past midnight)
        "end_date": server.app.today.isoformat(),
        "retry_backoff_seconds": 0.01,
        **extra,
    }


def keys_of(run, stream):
    key_properties = run.schema(stream)["key_properties"]
    return [tuple(r[k] for k in key_properties) for r in run.records(stream)]


def raw_keys(run, stream="detailed_activities"):
    return [(r["start_time"], r["user_id"], r["computer_id"]) for r in run.records(stream)]


def day(server, offset):
    return (server.app.today + dt.timedelta(days=offset)).isoformat()


@pytest.fixture
def controlio(sandbox_factory):
    # 4 days; 8 users: 8 rows per day in event reports (two pages of 5)
    return sandbox_factory("controlio", scale=1200, days=4, users=8, computers=3, activities=6, categories=3)


def test_every_default_stream_loads_exactly_its_rows_across_pages(controlio):
    run = sync(config_for(controlio, page_size=5))
    assert run.returncode == 0, run.stderr[-3000:]
    expected = controlio.app.expected_counts(start=controlio.app.first_day)
    assert run.counts() == expected
    for stream, count in expected.items():
        keys = keys_of(run, stream)
        assert len(set(keys)) == count, stream
        assert None not in {v for key in keys for v in key}, stream

    assert_no_secret(run, TOKEN)
    requests = controlio.logged()
    assert requests and all(r["auth"] for r in requests)
    assert all(r["params"]["sort_direction"] == "asc" for r in requests)
    logons = controlio.logged("/statistics/logons$")
    assert {r["params"]["limit"] for r in logons} == {"5"}
    # each day: offset 0 (5 rows) then offset 5 (3 rows, the last page)
    first = controlio.app.first_day.isoformat()
    assert [(r["params"]["start_time"], r["params"]["end_time"], r["params"]["offset"]) for r in logons[:2]] == [
        (first, first, "0"), (first, first, "5")]
    assert len(logons) == 2 * 4
    # productivity is one page: no paging parameters
    assert all("limit" not in r["params"] and "offset" not in r["params"]
               for r in controlio.logged("/statistics/productivity"))


def test_default_limit_is_the_documented_maximum(controlio):
    run = sync(config_for(controlio), streams=["users", "audit_log", "timeline_summary"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert {r["params"]["limit"] for r in controlio.logged("/api/v1/(users|audit_log)$")} == {"10000"}
    # the timeline reports document a default (and so a safe) limit of 25
    assert {r["params"]["limit"] for r in controlio.logged("timelineSummary")} == {"25"}


def test_cursor_reports_follow_prev_never_offset(controlio):
    run = sync(config_for(controlio, page_size=100), streams=["detailed_activities"])
    assert run.returncode == 0, run.stderr[-2000:]
    keys = raw_keys(run)
    assert len(keys) == len(set(keys)) == 1200
    assert keys == sorted(keys)
    # start_times to the microsecond, as in the document; the sandbox repeats rows
    # after a cursor whose start_time lost digits, so the count above holds only
    # if the cursor carries the raw start_time exactly
    assert all(len(k[0]) == len("2020-10-22T20:53:11.877501Z") and not k[0].endswith(".000000Z") for k in keys)
    requests = controlio.logged(RAW)
    assert all("offset" not in r["params"] and r["params"]["limit"] == "100" for r in requests)
    rows_by_day: dict[str, list[tuple]] = {}
    for key in keys:
        rows_by_day.setdefault(key[0][:10], []).append(key)
    requests_by_day: dict[str, list[dict]] = {}
    for request in requests:
        requests_by_day.setdefault(request["params"]["start_time"], []).append(request)
    assert list(requests_by_day) == list(rows_by_day)  # day windows, in order
    for window, chunk in requests_by_day.items():
        rows = rows_by_day[window]
        assert all(r["params"]["end_time"] == window for r in chunk)
        assert len(chunk) == len(rows) // 100 + 1  # the last chunk is shorter than limit
        assert "prev" not in chunk[0]["params"]
        for k, request in enumerate(chunk[1:], start=1):
            # the cursor: start_time, user_id, computer_id of the last row received
            assert request["params"]["prev"] == "{},{},{}".format(*rows[k * 100 - 1])


def test_rows_keep_undeclared_fields_and_times_are_utc(controlio):
    run = sync(config_for(controlio), streams=["detailed_activities", "computers", "users", "logons",
                                                       "workload_by_users", "emails"])
    assert run.returncode == 0, run.stderr[-2000:]
    raw = run.records("detailed_activities")[0]
    assert {"duration", "title"} <= set(raw["extra"])
    assert "duration" not in raw and isinstance(raw["user_id"], int)
    assert raw["window_start"] == raw["window_end"] == raw["start_time"][:10]
    schema = run.schema("detailed_activities")["schema"]["properties"]
    assert schema["start_time"]["format"] == "date-time"
    assert "additionalProperties" in schema["extra"] or schema["extra"]["type"]
    logon = run.records("logons")[0]
    assert {"logon_type", "session_id"} <= set(logon["extra"])
    assert set(run.records("workload_by_users")[0]["extra"]) == {"total_time", "productive_time", "idle_time",
                                                                 "undocumented_aggregate"}
    assert "size_bytes" in run.records("emails")[0]["extra"]
    computer = run.records("computers")[0]
    assert computer["extra"] == {"mac_address": "00:11:22:33:44:01",
                                 "undocumented_computers": {"source": "computers", "ref": computer["extra"][
                                     "undocumented_computers"]["ref"]}}
    assert computer["last_upload_time"] == "2026-01-02T01:04:05.123456+00:00"  # from +02:00
    assert run.records("users")[0]["extra"]["domain"] == "CORP"


def test_second_sync_reads_from_the_bookmark_with_lookback(sandbox_factory):
    # the sandbox's days fixed, and time passes to an hour before the end of its
    # today: the new rows are on its today whatever the wall clock says
    controlio = sandbox_factory("controlio", scale=1200, days=4, users=8, computers=3, activities=6, categories=3,
                                today=FIXED_TODAY)
    streams = ["detailed_activities", "logons", "workload_by_days", "audit_log"]
    first = sync(config_for(controlio), streams=streams)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.bookmark("logons")["replication_key_value"] == day(controlio, 0)
    late_evening = dt.datetime.combine(controlio.app.today, dt.time(23), dt.timezone.utc)
    controlio.app.advance(new=5, late=3, grow_today=900, now=late_evening.isoformat())
    controlio.clear_log()
    second = sync(config_for(controlio), state=first.state, streams=streams)
    assert second.returncode == 0, second.stderr[-2000:]
    # only yesterday (lookback_days=1) and today are read again
    windows = sorted({r["params"]["start_time"] for r in controlio.logged()})
    assert windows == [day(controlio, -1), day(controlio, 0)]
    new = set(raw_keys(second)) - set(raw_keys(first))
    assert len(new) == 8  # 5 new today, 3 late yesterday
    assert {k[0][:10] for k in raw_keys(second)} <= {day(controlio, -1), day(controlio, 0)}
    everything = controlio.app.expected_counts(start=controlio.app.first_day)
    for stream in streams:
        assert len(set(keys_of(first, stream)) | set(keys_of(second, stream))) == everything[stream], stream
    today_before = next(r for r in first.records("workload_by_days") if r["date"] == day(controlio, 0))
    today_after = next(r for r in second.records("workload_by_days") if r["date"] == day(controlio, 0))
    assert today_after["extra"]["total_time"] == today_before["extra"]["total_time"] + 900
    # lookback 0: only today
    controlio.clear_log()
    third = sync(config_for(controlio, lookback_days=0), state=second.state, streams=["logons"])
    assert third.returncode == 0
    assert {r["params"]["start_time"] for r in controlio.logged()} == {day(controlio, 0)}


def test_killed_sync_resumes_at_the_page_it_was_in(sandbox_factory):
    # a fixed clock: 1000 rows a day, so the kill falls inside a window, never at a page boundary
    # that depends on the hour the test runs at (the sandbox's rows otherwise end at its start)
    server = sandbox_factory("controlio", scale=6000, days=6, today=FIXED_TODAY)
    # no lookback: the resumed sync starts at the bookmark's window (a lookback re-reads whole days before it)
    config = config_for(server, page_size=250, lookback_days=0)
    killed = sync_until(config, records_before_kill=3600, streams=["detailed_activities"])
    assert killed.returncode != 0
    seen = set(raw_keys(killed))
    assert 3600 <= len(seen) < 6000
    saved = killed.state["bookmarks"]["detailed_activities"]
    bookmark, cursor = saved["replication_key_value"], saved["prev"]
    assert bookmark > server.app.first_day.isoformat() and cursor.startswith(bookmark)
    server.clear_log()
    resumed = sync(config, state=killed.state, streams=["detailed_activities"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = raw_keys(resumed)
    assert len(seen | set(again)) == 6000  # nothing lost
    # finished days are not read again: the resumed sync starts at the saved cursor
    first_request = server.logged(RAW)[0]["params"]
    assert (first_request["start_time"], first_request["prev"]) == (bookmark, cursor)
    assert min(r["params"]["start_time"] for r in server.logged(RAW)) == bookmark
    assert len(seen & set(again)) <= 250  # at most the page in flight
    # the finished sync leaves no page cursor behind
    assert "prev" not in resumed.bookmark("detailed_activities")


def test_killed_offset_report_resumes_at_its_window(sandbox_factory):
    server = sandbox_factory("controlio", scale=100, days=10, users=40, today=FIXED_TODAY)
    config = config_for(server, page_size=10, lookback_days=0)  # the resumed sync starts at the bookmark
    killed = sync_until(config, records_before_kill=130, streams=["logons"])
    seen = {(r["row_key"], r["start_time"]) for r in killed.records("logons")}
    bookmark = killed.bookmark("logons")["replication_key_value"]
    assert bookmark > server.app.first_day.isoformat()
    server.clear_log()
    resumed = sync(config, state=killed.state, streams=["logons"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = {(r["row_key"], r["start_time"]) for r in resumed.records("logons")}
    assert len(seen | again) == 400
    assert min(r["params"]["start_time"] for r in server.logged("logons")) == bookmark
    assert {start[:10] for _, start in seen & again} <= {bookmark}  # at most the window in flight


def test_child_streams_keep_state_per_parent(controlio):
    streams = ["timeline_raw_by_user", "timeline_summary_by_user"]
    first = sync(config_for(controlio, window_days=2, interval=15), streams=streams)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.counts() == {"timeline_raw_by_user": 8 * 4, "timeline_summary_by_user": 8 * 4}
    assert {r["user_id"] for r in first.records("timeline_raw_by_user")} == set(range(1, 9))
    partitions = first.bookmark("timeline_raw_by_user")["partitions"]
    assert sorted(p["context"]["user_id"] for p in partitions) == list(range(1, 9))
    assert {p["replication_key_value"] for p in partitions} == {day(controlio, -1)}
    paths = {r["path"] for r in controlio.logged("timelineRaw/")}
    assert paths == {f"/api/v1/statistics/timelineRaw/{u}" for u in range(1, 9)}
    summary = controlio.logged("timelineSummary/")
    assert all(r["params"]["interval"] == "15" for r in summary)
    # two-day windows: start_time and end_time both sent
    assert {(r["params"]["start_time"], r["params"]["end_time"]) for r in summary} == {
        (day(controlio, -3), day(controlio, -2)), (day(controlio, -1), day(controlio, 0))}

    # a later sync resumes each user from that user's own bookmark
    state = first.state
    for partition in state["bookmarks"]["timeline_raw_by_user"]["partitions"]:
        if partition["context"]["user_id"] == 3:
            partition["replication_key_value"] = controlio.app.first_day.isoformat()
    controlio.clear_log()
    second = sync(config_for(controlio, window_days=2), state=state, streams=["timeline_raw_by_user"])
    assert second.returncode == 0, second.stderr[-2000:]
    starts = {(int(r["path"].rsplit("/", 1)[1]), r["params"]["start_time"]) for r in controlio.logged("timelineRaw/")}
    assert {s for u, s in starts if u == 3} == {day(controlio, -3), day(controlio, -1)}
    # the others from their bookmark (-1) less lookback_days (1), in two-day windows
    assert {s for u, s in starts if u != 3} == {day(controlio, -2), day(controlio, 0)}


def test_one_day_timeline_reports_send_only_start_time(controlio):
    run = sync(config_for(controlio, window_days=3), streams=["timeline_summary", "timeline_raw"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.counts() == {"timeline_summary": 8 * 4, "timeline_raw": 8 * 4}
    for path in ("timelineSummary$", "timelineRaw$"):
        requests = controlio.logged(path)
        assert sorted(r["params"]["start_time"] for r in requests) == [day(controlio, d) for d in range(-3, 1)]
        assert all("end_time" not in r["params"] for r in requests)


def test_captions_are_a_child_of_activities_and_off_by_default(controlio):
    default = sync(config_for(controlio))
    assert "captions" not in default.counts() and not controlio.logged("captions")
    controlio.clear_log()
    run = sync(config_for(controlio), streams=["captions"])
    assert run.returncode == 0, run.stderr[-2000:]
    first = controlio.app.first_day
    assert run.counts() == {"captions": controlio.app.captions_count(first, controlio.app.today)}
    requests = controlio.logged("captions")
    assert len(requests) == 6 * 4  # one per activity per day
    assert {r["params"]["activity_id"] for r in requests} == {str(a) for a in range(1, 7)}
    assert {r["activity_id"] for r in run.records("captions")} == {1, 4}
    assert "caption" in run.records("captions")[0]["extra"]


def test_report_and_audit_filters_are_sent(controlio):
    config = config_for(controlio, users=[2, 5], departments=[1], activity_type=1, aggregate_by_user=True,
                        removable_only=True, audit_actions=["update", "view"], audit_logins=[1],
                        audit_emails=["admin1@example.com"])
    streams = ["activity_sessions", "detailed_files", "detailed_activities", "audit_log", "workload_by_days"]
    run = sync(config, streams=streams)
    assert run.returncode == 0, run.stderr[-2000:]
    assert {r["user_id"] for r in run.records("activity_sessions")} == {2, 5}
    # sessions aggregated over all computers name no computer: the rows load all the same
    assert run.counts()["activity_sessions"] == 2 * 4
    assert all(r.get("computer_id") is None for r in run.records("activity_sessions"))
    assert {r["user_id"] for r in run.records("detailed_activities")} <= {2, 5}
    sessions = controlio.logged("activitySessions")[0]["params"]
    assert sessions["users"] == "2,5" and sessions["departments"] == "1" and sessions["aggregate_by_user"] == "true"
    assert controlio.logged("detailedFiles")[0]["params"]["removable_only"] == "true"
    assert controlio.logged(RAW)[0]["params"]["activity_type"] == "1"
    # workloadByDays takes one user_id, not users: with two users it is read unfiltered, and the log says so
    assert not {"users", "user_id"} & set(controlio.logged("workloadByDays")[0]["params"])
    assert run.counts()["workload_by_days"] == 4
    assert "workload_by_days" in run.stderr and "users filter is not applied" in run.stderr
    audit = controlio.logged("audit_log")[0]["params"]
    assert audit["actions"] == "update,view" and audit["logins"] == "1" and audit["emails"] == "admin1@example.com"
    entries = run.records("audit_log")
    assert entries and {(e["action"], e["login_id"]) for e in entries} <= {("update", 1), ("view", 1)}


def test_end_date_bounds_a_backfill(controlio):
    end = controlio.app.first_day + dt.timedelta(days=1)
    run = sync(config_for(controlio, end_date=end.isoformat()), streams=["detailed_activities", "logons"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert {k[0][:10] for k in raw_keys(run)} == {controlio.app.first_day.isoformat(), end.isoformat()}
    assert run.counts()["logons"] == 16
    assert run.bookmark("logons")["replication_key_value"] == end.isoformat()


TRANSIENT_FAULTS = [
    pytest.param({"kind": "status", "status": 429, "retry_after": 1}, id="429-retry-after"),
    pytest.param({"kind": "status", "status": 500}, id="500"),
    pytest.param({"kind": "status", "status": 502, "times": 2}, id="502-twice"),
    pytest.param({"kind": "status", "status": 503}, id="503"),
    pytest.param({"kind": "slow", "delay": 2}, id="slow-past-timeout"),
    pytest.param({"kind": "reset"}, id="connection-reset"),
    pytest.param({"kind": "truncate"}, id="truncated-body"),
]


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
def test_transient_faults_are_retried_and_lose_nothing(controlio, fault):
    controlio.add_fault(path=RAW, skip=1, **fault)
    controlio.add_fault(path="/statistics/logons", skip=2, **fault)
    run = sync(config_for(controlio, page_size=250, request_timeout=1), streams=["detailed_activities", "logons"])
    assert run.returncode == 0, run.stderr[-3000:]
    keys = raw_keys(run)
    assert len(keys) == len(set(keys)) == 1200
    assert len(set(keys_of(run, "logons"))) == len(keys_of(run, "logons")) == 32
    faulted = [r for r in controlio.logged() if r["fault"]]
    assert len(faulted) == 2 * fault.get("times", 1)
    if fault.get("retry_after"):
        log = controlio.logged(RAW)
        index = next(i for i, r in enumerate(log) if r["fault"])
        assert log[index + 1]["params"] == log[index]["params"]
        assert log[index + 1]["time"] - log[index]["time"] >= 0.9


def test_retries_give_up_with_the_api_message(controlio):
    controlio.add_fault("status", status=503, path="/statistics/logons", times=10)
    run = sync(config_for(controlio, max_retries=3), streams=["logons"])
    assert run.returncode != 0
    assert "503" in run.stderr and "/api/v1/statistics/logons" in run.stderr and "injected 503" in run.stderr
    assert len(controlio.logged("logons")) == 3


def test_malformed_page_fails_loudly(controlio):
    controlio.add_fault("malformed", path=RAW, skip=1)
    run = sync(config_for(controlio, page_size=100), streams=["detailed_activities"])
    assert run.returncode != 0
    assert "not JSON" in run.stderr and "/api/v1/statistics/detailedActivities" in run.stderr
    assert len(run.records("detailed_activities")) == 100  # the first page, nothing after the bad one


def test_bad_token_fails_with_the_api_message_without_revealing_it(controlio):
    secret = "wrong-token-7c1d2e"
    run = sync({**config_for(controlio), "api_token": secret}, streams=["users"])
    assert run.returncode != 0
    assert "401" in run.stderr and "invalid or missing API token" in run.stderr and "api_token" in run.stderr
    assert run.records() == []
    assert_no_secret(run, secret)
    assert len(controlio.logged()) == 1  # a 401 is not retried


def test_api_error_message_reaches_the_user(controlio):
    run = sync(config_for(controlio, paths={"users": "/api/v1/people"}), streams=["users"])
    assert run.returncode != 0
    assert "404" in run.stderr and "Not found: /api/v1/people" in run.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"start_date": "last tuesday"}, "start_date"),
        ({"api_url": "ftp://example.com"}, "api_url"),
        ({"window_days": 0}, "window_days"),
        ({"lookback_days": -1}, "lookback_days"),
        ({"page_size": 20000}, "page_size"),
        ({"interval": 7}, "interval"),
        ({"activity_type": 5}, "activity_type"),
        ({"audit_actions": ["explode"]}, "audit_actions"),
        ({"paths": {"no_such_stream": "/x"}}, "no_such_stream"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle"),
        ({"audit_api_types": ["soap"]}, "audit_api_types"),
        ({"api_token": None}, "api_token"),
        ({"api_token": 987654321}, "<api_token>"),  # the schema error quotes the value: masked
    ],
)
def test_bad_config_fails_before_any_request(controlio, change, message):
    config = {k: v for k, v in {**config_for(controlio), **change}.items() if v is not None}
    run = sync(config)
    assert run.returncode != 0
    assert message in run.stderr
    assert controlio.logged() == []
    if "api_token" in config:
        assert_no_secret(run, str(config["api_token"]))


def test_a_200_without_the_data_envelope_fails_loudly(controlio):
    # the sandbox's admin endpoint answers 200 with a JSON list, not {"data": [...]}
    run = sync(config_for(controlio, paths={"rules": "/_sandbox/requests"}), streams=["rules"])
    assert run.returncode != 0
    assert 'without the documented {"data": [...]}' in run.stderr and "/_sandbox/requests" in run.stderr
    assert run.records() == []


def test_timeline_summaries_per_interval_keep_one_row_per_interval(sandbox_factory):
    server = sandbox_factory("controlio", scale=100, days=2, users=3, summary_per_interval=True)
    streams = ["timeline_summary", "timeline_summary_by_user"]
    run = sync(config_for(server, interval=15), streams=streams)
    assert run.returncode == 0, run.stderr[-2000:]
    for stream in streams:
        keys = keys_of(run, stream)
        assert len(keys) == len(set(keys)) == 3 * 2 * 4, stream  # users x days x intervals
        assert all(period.endswith("Z") for _, period in keys)
    by_user = run.records("timeline_summary_by_user")
    assert {r["date"] for r in by_user} == {server.app.first_day.isoformat(), server.app.today.isoformat()}


BY_DAYS = ["workload_by_days", "operations_by_days", "multitasking_by_days"]


@pytest.mark.parametrize("with_date", [False, True], ids=["start-time-only", "start-time-and-date"])
def test_by_days_rows_keep_their_own_day_in_multi_day_windows(sandbox_factory, with_date):
    server = sandbox_factory("controlio", scale=100, days=5, users=4, by_days_date=with_date)
    run = sync(config_for(server, window_days=3), streams=BY_DAYS)
    assert run.returncode == 0, run.stderr[-2000:]
    days = [day(server, d) for d in range(-4, 1)]
    for stream in BY_DAYS:
        records = run.records(stream)
        assert [r["date"] for r in records] == days, stream  # one row per day, none merged
        assert len(set(keys_of(run, stream))) == len(records) == 5, stream
        assert run.schema(stream)["key_properties"] == ["date"]
        # two windows of up to three days: the rows say which window they came from
        assert [r["window_start"] for r in records] == [days[0]] * 3 + [days[3]] * 2
        assert all(r["start_time"] == f"{r['date']}T00:00:00.000000Z" for r in records)
        assert ("date" in records[0]["extra"]) is False
    assert {(r["params"]["start_time"], r["params"]["end_time"]) for r in server.logged("workloadByDays")} == {
        (days[0], days[2]), (days[3], days[4])}


def test_a_by_days_row_that_names_no_day_fails_over_a_multi_day_window(controlio):
    # rows without date or start_time (here the per-user workload's rows)
    paths = {"workload_by_days": "/api/v1/statistics/workloadByUsers"}
    run = sync(config_for(controlio, window_days=2, paths=paths), streams=["workload_by_days"])
    assert run.returncode != 0
    assert "workload_by_days" in run.stderr and "without date or start_time" in run.stderr
    assert "window_days" in run.stderr
    assert run.records("workload_by_days") == []
    # over one-day windows such a row is about the window's day
    run = sync(config_for(controlio, window_days=1, paths=paths), streams=["workload_by_days"])
    assert run.returncode == 0, run.stderr[-2000:]
    records = run.records("workload_by_days")
    assert len(records) == 8 * 4 and all(r["date"] == r["window_start"] for r in records)
    assert sorted({r["date"] for r in records}) == [day(controlio, d) for d in range(-3, 1)]


def test_workload_by_days_is_filtered_by_the_one_configured_user(controlio):
    run = sync(config_for(controlio, users=[3]), streams=["workload_by_days", "operations_by_days"])
    assert run.returncode == 0, run.stderr[-2000:]
    params = [r["params"] for r in controlio.logged("workloadByDays")]
    assert len(params) == 4 and all(p["user_id"] == "3" and "users" not in p for p in params)
    assert {r["extra"]["users_count"] for r in run.records("workload_by_days")} == {1}
    # the other by-days reports keep their documented users filter
    assert {r["params"]["users"] for r in controlio.logged("operationsByDays")} == {"3"}
    assert "users filter is not applied" not in run.stderr


DIGEST_KEYED = ["activity_sessions", "alerts", "detailed_files", "keystrokes", "printing", "searches", "logons",
                "timeline_raw", "timeline_raw_by_user", "audit_log", "categories_report", "users_activities"]


def test_rows_with_only_the_guaranteed_fields_load_with_distinct_stable_keys(sandbox_factory):
    server = sandbox_factory("controlio", scale=100, days=4, users=6, computers=3, categories=4, sparse_rows=True)
    run = sync(config_for(server, page_size=5), streams=DIGEST_KEYED)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = server.app.expected_counts(start=server.app.first_day)
    assert run.counts() == {stream: expected[stream] for stream in DIGEST_KEYED}
    for stream in DIGEST_KEYED:
        keys = keys_of(run, stream)
        assert len(set(keys)) == len(keys), stream
        schema = run.schema(stream)
        assert "row_key" in schema["key_properties"], stream
        assert set(schema["schema"]["required"]) <= {"row_key", "window_start"}, stream
    logons = run.records("logons")
    assert all(r.get("computer_id") is None for r in logons)
    assert run.schema("logons")["schema"]["properties"]["computer_id"]["type"] == ["integer", "null"]
    # pairs of rows share a user and a start_time: a key of those two fields would merge them
    assert len({(r["user_id"], r["start_time"]) for r in logons}) == len(logons) // 2
    assert all(r.get("id") is None for r in run.records("audit_log"))
    assert all(r.get("category_id") is None and r["name"] for r in run.records("categories_report"))

    # the same rows read again, in other windows, get the same keys
    again = sync(config_for(server, page_size=7, window_days=3), streams=DIGEST_KEYED)
    assert again.returncode == 0, again.stderr[-3000:]
    for stream in DIGEST_KEYED:
        if stream != "categories_report":  # an aggregate of its window: keyed by window_start too
            assert set(keys_of(again, stream)) == set(keys_of(run, stream)), stream


@pytest.mark.parametrize(
    ("stream", "path", "field"),
    [
        ("emails", "/api/v1/statistics/logons", "'id'"),
        ("workload_by_users", "/api/v1/statistics/workloadByDepartments", "'user_id'"),
        ("detailed_activities", "/api/v1/statistics/logons", "'computer_id'"),  # sparse logons name no computer
    ],
)
def test_a_row_without_a_primary_key_field_fails_naming_the_report_and_field(sandbox_factory, stream, path, field):
    server = sandbox_factory("controlio", scale=100, days=2, users=4, sparse_rows=True)
    run = sync(config_for(server, paths={stream: path}), streams=[stream])
    assert run.returncode != 0
    assert f"{stream} row without its primary key field {field}" in run.stderr
    assert path in run.stderr
    assert run.records() == []


def test_lists_without_a_documented_item_type_accept_any_items():
    from jsonschema import Draft202012Validator

    catalog = catalog_for([])
    for stream, field in [("departments", "ancestors"), ("users", "ancestors"), ("users", "ancestors_names"),
                          ("emails", "to_address")]:
        (entry,) = [e for e in catalog["streams"] if e["tap_stream_id"] == stream]
        schema = entry["schema"]["properties"][field]
        validator = Draft202012Validator(schema)
        for value in ([1, 2], ["Department 1"], [{"id": 1, "name": "x"}], [1, "a", None], None):
            assert validator.is_valid(value), (stream, field, value)


@pytest.mark.parametrize("interval", ["7", "abc", ""])
def test_the_sandbox_refuses_an_undocumented_interval_with_400(controlio, interval):
    import requests

    headers = {"Authorization": f"Bearer {TOKEN}"}
    today = controlio.app.today.isoformat()
    for path, params in [("timelineSummary", {"start_time": today}),
                         ("timelineSummary/1", {"start_time": today, "end_time": today})]:
        response = requests.get(f"{controlio.url}/api/v1/statistics/{path}", headers=headers, timeout=10,
                                params={**params, "interval": interval})
        assert response.status_code == 400, (path, response.text)
        assert "interval" in response.json()["error"]
    ok = requests.get(f"{controlio.url}/api/v1/statistics/timelineSummary", headers=headers, timeout=10,
                      params={"start_time": today, "interval": "15"})
    assert ok.status_code == 200 and len(ok.json()["data"]) == 8


def test_fields_the_tap_computes_never_overwrite_the_rows_own():
    from tap_controlio.client import Window
    from tap_controlio.tap import TapControlio

    tap = TapControlio(config={"api_token": TOKEN})
    first = dt.date(2026, 1, 5)
    own = {"row_key": "theirs", "window_start": "1999-01-01", "period": "morning"}
    row = {"user_id": 1, "start_time": "2026-01-05T09:00:00.250000Z", **own}
    logons, summary = tap.streams["logons"], tap.streams["timeline_summary"]
    for stream in (logons, summary):
        stream.enter_window(Window(first, first))
    record = logons.post_process(dict(row))
    assert record["window_start"] == "2026-01-05" and len(record["row_key"]) == 32
    assert record["row_key"] == logons.post_process(dict(row))["row_key"]  # deterministic
    assert {k: record["extra"][k] for k in own} == own
    record = summary.post_process(dict(row))
    assert record["period"] == "2026-01-05T09:00:00.250000Z" and record["extra"]["period"] == "morning"


def test_a_digest_key_survives_an_event_growing_and_totals_growing(sandbox_factory):
    from tap_controlio.client import Window
    from tap_controlio.tap import TapControlio

    tap = TapControlio(config={"api_token": TOKEN})
    logons = tap.streams["activity_sessions"]
    logons.enter_window(Window(dt.date(2026, 1, 5), dt.date(2026, 1, 5)))
    open_event = {"user_id": 1, "start_time": "2026-01-05T09:00:00.250000Z", "end_time": "2026-01-05T09:01:00Z",
                  "duration": 60, "idle": 3, "computer_name": "PC-1"}
    longer = {**open_event, "end_time": "2026-01-05T09:30:00Z", "duration": 1800, "idle": 40}
    other_computer = {**open_event, "computer_name": "PC-2"}
    key = logons.post_process(dict(open_event))["row_key"]
    assert logons.post_process(dict(longer))["row_key"] == key
    assert logons.post_process(dict(other_computer))["row_key"] != key

    # today's category totals grow between two syncs: the rows keep their keys
    server = sandbox_factory("controlio", scale=100, days=2, users=4, categories=4, sparse_rows=True)
    first = sync(config_for(server, lookback_days=1), streams=["categories_report"])
    assert first.returncode == 0, first.stderr[-2000:]
    server.app.advance()
    second = sync(config_for(server, lookback_days=1), streams=["categories_report"], state=first.state)
    assert second.returncode == 0, second.stderr[-2000:]
    today = server.app.today.isoformat()
    def today_by_key(run):
        records = run.records("categories_report")
        return {k: r for k, r in zip(keys_of(run, "categories_report"), records, strict=True)
                if r["window_start"] == today}

    before, after = today_by_key(first), today_by_key(second)
    assert before and set(after) == set(before)
    assert all(after[k]["extra"]["total_time"] > before[k]["extra"]["total_time"] for k in before)
