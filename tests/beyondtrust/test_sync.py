"""tap-beyondtrust against the BeyondTrust sandbox: counts, types, windows and
state, tokens, archives, faults, errors."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import time

import pytest

from tests.taputil import assert_no_secret, discover, run_tap, run_tap_until, select_streams

TAP = "tap-beyondtrust"
SECRET = "sandbox-beyondtrust-secret"
SESSION_STREAMS = ["support_sessions", "support_session_events", "support_session_listing"]
ARCHIVE_STREAMS = ["event_archives", "archive_support_session", "archive_representative",
                   "archive_session_events", "archive_truncate_events", "archive_other_events"]


def config_for(server, **extra):
    return {
        "api_url": server.url + "/",  # a trailing slash is tolerated
        **server.app.info()["credentials"],
        "retry_backoff_seconds": 0.01,
        "request_timeout": 10,
        **extra,
    }


def keys(run, stream):
    key_properties = run.schema(stream)["key_properties"]
    return [json.dumps([r.get(k) for k in key_properties]) for r in run.records(stream)]


def reports(server, name, *params):
    """The logged calls of report ``name`` (those with each of ``params``)."""
    return [r for r in server.logged("/api/reporting")
            if r["params"].get("generate_report") == name and all(p in r["params"] for p in params)]


def utc(ts):
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat()


def known_extra(extra):
    """``extra`` without the sandbox's ``undocumented_*`` keys (None when nothing else is left)."""
    rest = {k: v for k, v in (extra or {}).items() if not k.startswith("undocumented_")}
    return rest or None


def ok(run):
    assert run.returncode == 0, run.stderr[-3000:]
    return run


@pytest.fixture
def bt(sandbox_factory):
    return sandbox_factory("beyondtrust", scale=400, days=4, team_events_per_day=15, jump_events_per_day=8,
                           vault_events_per_day=5, archive_count=4, archive_events=300)


def test_every_stream_loads_exactly_the_expected_rows(bt):
    run = ok(run_tap(TAP, config_for(bt)))
    expected = bt.app.info()["expected_counts"]
    assert {s for s, n in expected.items() if n} <= set(run.counts()), "every stream has rows"
    assert expected["state_support_session_skill"] == 0, "a null table in the state archive: no rows"
    for stream, count in expected.items():
        found = keys(run, stream)
        assert len(set(found)) == count, stream
        if stream != "support_teams":  # one row per team per window, upserted by id
            assert len(found) == count, f"{stream} emitted duplicates"


def test_records_are_typed_nested_and_in_utc(bt):
    run = ok(run_tap(TAP, config_for(bt), streams=["support_sessions", "support_session_events",
                                                   "support_session_summary", "jump_items"]))
    app = bt.app
    index = {app.lsid(i): i for i in range(app.session_total)}
    sessions = run.records("support_sessions")
    for record in sessions[:60]:
        i = index[record["lsid"]]
        start, end = app.session_times(i)
        assert record["start_time"] == dt.datetime.fromtimestamp(start, dt.timezone.utc).isoformat()
        assert record["end_time"] == dt.datetime.fromtimestamp(end, dt.timezone.utc).isoformat()
        assert record["lseq"] == i + 1 and record["duration_seconds"] == end - start
        assert record["customers"][0]["info"]["company"]
        assert record["customers"][0]["gsnumber"] == 100 + i % 50
        if app.accepted(i):
            assert record["representatives"][0]["id"] == record["primary_rep"]["id"]
        else:  # closed before a representative accepted it
            assert record["representatives"] == [] and "primary_rep" not in record
        assert record["teams"][0]["primary_team"] == 1
        assert record["custom_attributes"][0]["code_name"] == "ticket_priority"
        assert (len(record.get("show_my_screen_recordings") or []) == 2) == (i % 7 == 0)
        if i % 10 == 3:
            assert record["extra"]["priority_note"] == f"undocumented {i}"  # unknown elements are kept
    schema = run.schema("support_sessions")
    assert schema["key_properties"] == ["lsid"]
    assert schema["schema"]["properties"]["end_time"]["format"] == "date-time"

    events = run.records("support_session_events")
    by_session: dict[str, list[int]] = {}
    for event in events:
        by_session.setdefault(event["lsid"], []).append(event["seq"])
        assert event["timestamp"].endswith("+00:00")
    assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in by_session.values())
    assert set(by_session) == {s["lsid"] for s in sessions}
    sample = sessions[0]
    i = index[sample["lsid"]]
    start, end = app.session_times(i)
    assert [e["timestamp"] for e in events if e["lsid"] == sample["lsid"]] == [
        dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat() for ts, _, _ in app.session_events(i, start, end)
    ], "the appliance's -05:00 times, converted to UTC"
    encoded = [e for e in events if e.get("body_was_encoded")]
    assert encoded and all(e["body"].startswith("binary \ufffd\x01 chat") for e in encoded), "NUL cannot load"
    assert all(base64.b64decode(e["encoded_body"]).startswith(b"binary \x00\x01 chat") for e in encoded)
    members = [e for e in events if e["event_type"] == "Conference Member Added"]
    assert members and members[0]["data"]["support_teams"].startswith(";")
    sysinfo = [e for e in events if e.get("system_information")]
    assert sysinfo and sysinfo[0]["system_information"][0]["fields"] == ["Drive", "Type", "Percent Used"]
    uploads = [e for e in events if e["event_type"] == "File Upload"]
    assert uploads and uploads[0]["files"][0]["size"] == uploads[0]["filesize"]

    summary = run.records("support_session_summary")
    assert {r["report_type"] for r in summary} == {"rep", "team", "site"}
    assert all(isinstance(r["total_sessions"], int) and isinstance(r["avg_sessions_per_weekday"], float)
               for r in summary)
    sites = [r for r in summary if r["report_type"] == "site"]
    assert {r["id"] for r in sites} == {1, 2} and {r["type"] for r in sites} == {"site"}
    assert {r["display_name"] for r in sites} == {"Site 1", "Site 2"}
    for kind in ("rep", "team", "site"):  # each kind counts every session ended that day once
        per_day: dict[str, int] = {}
        for r in summary:
            if r["report_type"] == kind:
                per_day[r["period_start"]] = per_day.get(r["period_start"], 0) + r["total_sessions"]
        ended = {}
        for i in range(app.session_total):
            end = app.session_times(i)[1]
            if end is not None and (kind != "rep" or app.accepted(i)):
                day = utc(end // 86400 * 86400)
                ended[day] = ended.get(day, 0) + 1
        assert per_day == ended, kind
    partitions = run.bookmark("support_session_summary")["partitions"]
    assert sorted(p["context"]["report_type"] for p in partitions) == ["rep", "site", "team"]
    assert {c["params"]["report_type"] for c in reports(bt, "SupportSessionSummary")} == {"rep", "team", "site"}
    jumps = run.records("jump_items")
    assert all(isinstance(j["jump_item_id"], int) and j["jump_group"]["type"] in ("shared", "personal")
               for j in jumps)


def midnight_30_days_before(ts):
    day = dt.datetime.fromtimestamp(ts, dt.timezone.utc).date() - dt.timedelta(days=30)
    return int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp())


def test_one_token_per_sync_and_every_call_closes_its_connection(bt):
    before = int(time.time())
    run = ok(run_tap(TAP, config_for(bt), streams=["support_sessions", "license_usage",
                                                   "customer_exit_surveys", "jump_items"]))
    after = int(time.time())
    assert len(bt.logged("/oauth2/token")) == 1
    assert_no_secret(run, SECRET, *bt.app.tokens)  # neither the secret nor the access token
    assert bt.logged("/oauth2/token")[0]["connection"] == "close"
    calls = bt.logged("/api/reporting")
    assert calls and all(c["auth"] and c["connection"] == "close" and c["status"] == 200 for c in calls)
    windows = [(int(c["params"]["end_time"]), int(c["params"]["duration"]))
               for c in reports(bt, "SupportSession", "end_time")]
    first_ts = bt.app.first_ts
    # no start_date: 30 days before the sync's day, at midnight UTC (the sync's day: that of its start)
    assert windows[0][0] in {midnight_30_days_before(before), midnight_30_days_before(after)}
    assert all(lo + d == nxt for (lo, d), (nxt, _) in itertools.pairwise(windows)), "windows are contiguous"
    assert all(0 < d <= 86400 for _, d in windows)
    assert before <= windows[-1][0] + windows[-1][1] <= after, "no end_date: the last window ends at the sync's start"
    assert first_ts >= windows[0][0]
    surveys = reports(bt, "SupportCustExitSurvey")
    assert [(s["params"]["report_type"], s["params"]["id"]) for s in surveys] == [("rep", "all"), ("team", "all")] * (
        len(surveys) // 2), "each window by rep, then by team"
    assert [s["params"]["end_time"] for s in surveys[::2]] == [s["params"]["end_time"] for s in surveys[1::2]]
    (licence,) = reports(bt, "LicenseUsage")
    assert licence["params"]["group_by"] == "day" and licence["params"]["duration"] == "0"
    assert "start_time" in reports(bt, "JumpItem")[0]["params"]
    assert run.bookmark("support_sessions")["replication_key_value"] == dt.datetime.fromtimestamp(
        windows[-1][0] + windows[-1][1], dt.timezone.utc).isoformat()


def test_second_sync_emits_only_new_late_and_unended_sessions(bt):
    app = bt.app
    first = ok(run_tap(TAP, config_for(bt), streams=SESSION_STREAMS))
    still_open = set(app.info()["open_sessions"])
    running = {r["lsid"] for r in first.records("support_sessions") if r["end_time"] is None}
    assert still_open and still_open <= running, "sessions still running are loaded without an end"
    changed = app.advance(new=4)
    time.sleep(1.1)  # the next sync's last window must end after the new sessions' second
    bt.clear_log()
    second = ok(run_tap(TAP, config_for(bt, unended_session_days=1), state=first.state, streams=SESSION_STREAMS))
    # sessions and listing each ask for the day of sessions started (each from
    # its own sync's end, which may be a second or two apart)
    starts = {int(c["params"]["start_time"]) for c in reports(bt, "SupportSessionListing", "start_time")}
    assert 1 <= len(starts) <= 2 and max(starts) - min(starts) <= 5
    lo = min(starts)
    new = {r["lsid"] for r in second.records("support_sessions")}
    extras = {app.lsid(i) for i in range(app.base_count, app.session_total)}
    unended = {app.lsid(i) for i in range(app.session_total)
               if app.session_times(i)[1] is None and app.session_times(i)[0] >= lo}
    assert unended, "a day back holds sessions that closed abnormally"
    assert new == still_open | extras | unended
    assert changed["closed"] == len(still_open)
    late = [r for r in second.records("support_sessions") if r["lsid"] in still_open]
    assert late and all(r["end_time"] for r in late), "a session loaded while it ran now has its end"
    assert {r["lsid"] for r in second.records("support_session_listing")} == new
    assert {r["lsid"] for r in second.records("support_session_events")} == new
    total = len(set(keys(first, "support_sessions")) | set(keys(second, "support_sessions")))
    assert total == app.info()["expected_counts"]["support_sessions"]


def test_killed_sync_resumes_from_its_last_window_and_loses_nothing(sandbox_factory):
    server = sandbox_factory("beyondtrust", scale=1200, days=4)
    config = config_for(server)
    killed = run_tap_until(TAP, config, records_before_kill=500, streams=["support_sessions"])
    assert killed.states(), "a STATE message after each window"
    state = killed.states()[-1]
    resumed = ok(run_tap(TAP, config, state=state, streams=["support_sessions"]))
    before, after = set(keys(killed, "support_sessions")), keys(resumed, "support_sessions")
    expected = server.app.info()["expected_counts"]["support_sessions"]
    assert len(before | set(after)) == expected
    per_day = expected / 4
    assert len(before & set(after)) <= 2 * per_day, "at most the interrupted window is read again"


FAULTS = [
    pytest.param("status", {"status": 429, "retry_after": 1}, id="429-retry-after"),
    pytest.param("status", {"status": 500}, id="500"),
    pytest.param("status", {"status": 502}, id="502"),
    pytest.param("status", {"status": 503}, id="503"),
    pytest.param("slow", {"delay": 2}, id="slow"),
    pytest.param("reset", {}, id="reset-mid-body"),
    pytest.param("truncate", {}, id="truncated-body"),
]


@pytest.mark.parametrize(("kind", "options"), FAULTS)
def test_transient_faults_are_retried_and_lose_nothing(sandbox_factory, kind, options):
    # one window for the whole range: a ~1.5 MB answer, broken after its first rows
    server = sandbox_factory("beyondtrust", scale=800, days=3)
    server.add_fault(kind, path="/api/reporting", **options)
    started = time.monotonic()
    run = ok(run_tap(TAP, config_for(server, window_days=40, request_timeout=1), streams=["support_sessions"]))
    found = keys(run, "support_sessions")
    assert len(found) == len(set(found)) == server.app.info()["expected_counts"]["support_sessions"]
    calls = reports(server, "SupportSession", "end_time")
    assert calls[0]["fault"] == kind and len(calls) == 2
    if kind in ("reset", "truncate"):
        assert "broke off" in run.stderr
    if options.get("retry_after"):
        assert time.monotonic() - started >= 1


def test_archive_broken_midway_is_read_again_without_duplicates(sandbox_factory):
    server = sandbox_factory("beyondtrust", scale=50, days=2, archive_count=2, archive_events=20000)
    first_day = dt.datetime.fromtimestamp(server.app.archive_slots[0], dt.timezone.utc).date().isoformat()
    server.add_fault("reset", path="/api/reporting", skip=1)  # the first archive download
    run = ok(run_tap(TAP, config_for(server, start_date=first_day), streams=ARCHIVE_STREAMS))
    expected = server.app.info()["expected_counts"]
    for stream in ARCHIVE_STREAMS:
        found = keys(run, stream)
        assert len(found) == len(set(found)) == expected[stream], stream
    assert "broke off" in run.stderr
    assert any(r["fault"] == "reset" and r["params"]["generate_report"] == "Archive"
               for r in server.logged("/api/reporting"))


def archive_config(server):
    """From the first archive's date: fewer empty listings to ask for."""
    first_day = dt.datetime.fromtimestamp(server.app.archive_slots[0], dt.timezone.utc).date()
    return config_for(server, start_date=first_day.isoformat())


def test_archives_are_read_once_and_a_gap_is_warned_about(bt):
    first = ok(run_tap(TAP, archive_config(bt), streams=ARCHIVE_STREAMS))
    assert len(reports(bt, "Archive")) == 4
    bt.clear_log()
    again = ok(run_tap(TAP, archive_config(bt), state=first.state, streams=ARCHIVE_STREAMS))
    assert reports(bt, "Archive") == [] and again.counts().get("archive_support_session", 0) == 0
    bt.app.advance()
    bt.clear_log()
    third = ok(run_tap(TAP, archive_config(bt), state=again.state, streams=ARCHIVE_STREAMS))
    (download,) = reports(bt, "Archive")
    assert third.counts()["event_archives"] == 1
    assert download["params"]["type"] == "event"
    assert "keeps only the last 7" not in third.stderr

    old = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=10)).isoformat()
    stale = {"bookmarks": {"event_archives": {"replication_key": "archive_key",
                                              "replication_key_value": f"{old}/00012"}}}
    late = ok(run_tap(TAP, config_for(bt), state=stale, streams=ARCHIVE_STREAMS))
    assert "no longer on the appliance" in late.stderr and "at least weekly" in late.stderr
    assert late.counts()["event_archives"] == 5


def test_a_401_renews_the_token_once(bt):
    bt.add_fault("status", status=401, path="/api/reporting", skip=2)
    run = ok(run_tap(TAP, config_for(bt), streams=["support_sessions"]))
    assert len(bt.logged("/oauth2/token")) == 2
    assert len(set(keys(run, "support_sessions"))) == bt.app.info()["expected_counts"]["support_sessions"]


def test_a_second_401_fails_clearly(bt):
    bt.add_fault("status", status=401, path="/api/reporting", skip=2, times=2)
    run = run_tap(TAP, config_for(bt), streams=["support_sessions"])
    assert run.returncode != 0
    assert "401" in run.stderr and "SupportSession" in run.stderr
    assert len(bt.logged("/oauth2/token")) == 2
    assert_no_secret(run, SECRET)


def test_a_token_expiring_mid_sync_is_renewed(sandbox_factory):
    server = sandbox_factory("beyondtrust", scale=300, days=4, token_lifetime=1)
    server.add_fault("slow", path="/api/reporting", delay=0.7, times=4)
    run = ok(run_tap(TAP, config_for(server), streams=["support_sessions", "jump_items"]))
    assert server.app.info()["tokens_issued"] >= 2
    expected = server.app.info()["expected_counts"]
    assert len(set(keys(run, "support_sessions"))) == expected["support_sessions"]
    assert len(set(keys(run, "jump_items"))) == expected["jump_items"]


@pytest.mark.parametrize(("report", "stream", "where"), [
    ("SupportSession", "support_sessions", "SupportSession report failed"),  # an <error> answer
    ("LicenseUsage", "license_usage", "LicenseUsage report failed"),  # <error> inside <license_usage>
    ("Archive", "event_archives", "BeyondTrust Archive "),  # XML instead of the gzip file
])
def test_an_error_element_fails_with_the_appliance_message(sandbox_factory, report, stream, where):
    server = sandbox_factory("beyondtrust", scale=100, days=2, archive_count=2, reject_reports=[report])
    run = run_tap(TAP, config_for(server), streams=[stream])
    assert run.returncode != 0
    assert f"does not have permission to run {report} reports" in run.stderr
    assert where in run.stderr
    assert run.records(stream) == []
    assert reports(server, report)[0]["status"] == 200  # the error came with HTTP 200


@pytest.mark.parametrize("namespace", ["", "https://example.com/not-the-reporting-namespace"])
def test_an_answer_outside_the_reporting_namespace_fails_instead_of_reading_nothing(sandbox_factory, namespace):
    server = sandbox_factory("beyondtrust", scale=100, days=2, xml_namespace=namespace)
    run = run_tap(TAP, config_for(server), streams=["support_sessions"])
    assert run.returncode != 0
    assert "where the document names <session_list>" in run.stderr


def test_malformed_xml_fails_loudly(bt):
    bt.add_fault("malformed", path="/api/reporting")
    run = run_tap(TAP, config_for(bt), streams=["support_sessions"])
    assert run.returncode != 0
    assert "cannot be parsed" in run.stderr and "SupportSession" in run.stderr
    assert run.records("support_sessions") == []


def test_bad_credentials_fail_clearly_without_revealing_them(bt):
    wrong = "not-the-secret-4711"
    run = run_tap(TAP, config_for(bt, client_secret=wrong), streams=["support_sessions"])
    assert run.returncode != 0
    assert "refused the client credentials" in run.stderr and "client_secret" in run.stderr
    assert_no_secret(run, wrong)
    assert bt.logged("/api/reporting") == []


@pytest.mark.parametrize(("change", "message"), [
    ({"client_secret": None}, "client_secret"),
    ({"client_secret": 987654321}, "<client_secret>"),  # the schema error would quote the value: masked
    ({"api_url": "ftp://support.example.com"}, "api_url"),
    ({"window_days": 0}, "window_days"),
    ({"lookback_seconds": -5}, "lookback_seconds"),
    ({"unended_session_days": -1}, "unended_session_days"),
    ({"license_group_by": "week"}, "license_group_by"),
    ({"start_date": "2024-05-01", "end_date": "2024-04-01"}, "end_date"),
])
def test_bad_config_fails_before_any_request(bt, change, message):
    config = config_for(bt)
    for key, value in change.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    run = run_tap(TAP, config)
    assert run.returncode != 0
    assert message in run.stderr
    assert bt.logged() == []
    assert_no_secret(run, str(config.get("client_secret", SECRET)))


def test_end_date_bounds_a_backfill(bt):
    app = bt.app
    day = dt.datetime.fromtimestamp(app.first_ts, dt.timezone.utc).date() + dt.timedelta(days=1)
    run = ok(run_tap(TAP, config_for(bt, start_date=day.isoformat(), end_date=day.isoformat()),
                     streams=["support_sessions"]))
    lo = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp())
    ended = {app.lsid(i) for i in range(app.session_total)
             if app.session_times(i)[1] is not None and lo <= app.session_times(i)[1] < lo + 86400}
    unended = {app.lsid(i) for i in range(app.session_total)
               if app.session_times(i)[1] is None and lo <= app.session_times(i)[0] < lo + 86400}
    assert ended and unended
    assert {r["lsid"] for r in run.records("support_sessions")} == ended | unended
    assert len(run.records("support_sessions")) == len(ended | unended)


def test_archive_tables_alone_still_keep_the_archive_bookmark(bt):
    only_tables = ["archive_support_session", "archive_session_events"]
    first = ok(run_tap(TAP, archive_config(bt), streams=only_tables))
    assert "event_archives" not in first.counts()
    assert first.counts()["archive_support_session"] == bt.app.info()["expected_counts"]["archive_support_session"]
    assert first.bookmark("event_archives")["replication_key_value"].endswith(
        f"/{(bt.app.archive_slots[-1] % 86400) // 600 + 1:05d}")
    bt.clear_log()
    second = ok(run_tap(TAP, archive_config(bt), state=first.state, streams=only_tables))
    assert reports(bt, "Archive") == [] and second.counts() == {}


def test_the_next_sync_starts_lookback_seconds_before_the_window_bookmark(bt):
    first = ok(run_tap(TAP, config_for(bt), streams=["support_sessions"]))
    bookmark = dt.datetime.fromisoformat(first.bookmark("support_sessions")["replication_key_value"])
    bt.clear_log()
    second = ok(run_tap(TAP, config_for(bt, lookback_seconds=2 * 86400), state=first.state,
                        streams=["support_sessions"]))
    first_window = reports(bt, "SupportSession")[0]["params"]
    assert int(first_window["end_time"]) == int(bookmark.timestamp()) - 2 * 86400
    again = set(keys(second, "support_sessions"))
    assert again and again <= set(keys(first, "support_sessions")), "re-read rows, upserted by lsid"


def test_killed_archive_sync_resumes_at_the_archive_it_was_in(sandbox_factory):
    server = sandbox_factory("beyondtrust", scale=50, days=2, archive_count=3, archive_events=3000)
    config = archive_config(server)
    expected = server.app.info()["expected_counts"]
    per_archive = sum(expected[s] for s in ARCHIVE_STREAMS if s != "event_archives") // 3
    killed = run_tap_until(TAP, config, records_before_kill=per_archive * 3 // 2, streams=ARCHIVE_STREAMS)
    assert killed.counts()["event_archives"] == 1, "killed inside the second archive"
    resumed = ok(run_tap(TAP, config, state=killed.states()[-1], streams=ARCHIVE_STREAMS))
    assert resumed.counts()["event_archives"] == 2, "the first archive is not read again"
    for stream in ARCHIVE_STREAMS:
        assert len(set(keys(killed, stream)) | set(keys(resumed, stream))) == expected[stream], stream


def test_an_answer_that_keeps_breaking_off_fails_and_keeps_the_bookmark(sandbox_factory):
    server = sandbox_factory("beyondtrust", scale=800, days=3)
    server.add_fault("reset", path="/api/reporting", times=10)
    run = run_tap(TAP, config_for(server, window_days=40, max_retries=3), streams=["support_sessions"])
    assert run.returncode != 0
    assert "broke off 3 times" in run.stderr
    bookmarks = [s["bookmarks"].get("support_sessions", {}) for s in run.states()]
    assert not any(b.get("replication_key_value") for b in bookmarks), "no window counted as read"


def test_sessions_and_their_events_share_one_download_per_window(bt):
    # every sync ends at the sandbox's clock (end_date), not at its own second: a
    # sync that ended "now" could leave the next one, in the same second, no window
    end = {"end_date": utc(bt.app.init_now)}
    both = ok(run_tap(TAP, config_for(bt, **end), streams=["support_sessions", "support_session_events"]))
    windows = [(c["params"]["end_time"], c["params"]["duration"]) for c in reports(bt, "SupportSession", "end_time")]
    assert len(windows) == len(set(windows)), "each window asked once for both streams"
    expected = bt.app.info()["expected_counts"]
    assert len(keys(both, "support_session_events")) == expected["support_session_events"]

    bt.clear_log()
    alone = ok(run_tap(TAP, config_for(bt, **end), streams=["support_session_events"]))
    assert "support_sessions" not in alone.counts()
    assert sorted(keys(alone, "support_session_events")) == sorted(keys(both, "support_session_events"))
    bt.clear_log()
    again = ok(run_tap(TAP, config_for(bt, lookback_seconds=0, unended_session_days=0, **end), state=alone.state,
                       streams=["support_session_events"]))
    assert again.counts() == {}, "the windows' bookmark advanced with only the events selected"
    assert reports(bt, "SupportSession") == [], "every window was read: none is asked again"
    assert alone.bookmark("support_sessions")["replication_key_value"] == utc(bt.app.init_now)


def test_a_deselected_property_is_left_out(bt):
    config = config_for(bt)
    catalog = select_streams(discover(TAP, config), ["support_sessions", "support_session_events"])
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] in (["properties", "customers"], ["properties", "body"]):
                meta["metadata"]["selected"] = False
    run = ok(run_tap(TAP, config, catalog=catalog))
    sessions, events = run.records("support_sessions"), run.records("support_session_events")
    assert sessions and all("customers" not in r and "representatives" in r for r in sessions)
    assert events and all("body" not in r and "event_type" in r for r in events)


def test_a_4xx_other_than_401_and_429_fails_at_once_with_the_message(bt):
    bt.add_fault("status", status=403, path="/api/reporting")
    run = run_tap(TAP, config_for(bt), streams=["support_sessions"])
    assert run.returncode != 0
    assert "/api/reporting" in run.stderr and "403" in run.stderr and "injected 403" in run.stderr
    assert len(bt.logged("/api/reporting")) == 1, "not retried"


# ------------------------------------------------------------------ sessions without an end
def test_sessions_that_never_end_arrive_once_and_a_second_sync_keeps_them(bt):
    app = bt.app
    abnormal = set(app.info()["abnormal_sessions"])
    running = set(app.info()["open_sessions"])
    assert abnormal and running
    first = ok(run_tap(TAP, config_for(bt), streams=SESSION_STREAMS))
    sessions = first.records("support_sessions")
    assert len(sessions) == len({r["lsid"] for r in sessions}) == app.session_total
    unended = [r for r in sessions if r["end_time"] is None]
    assert {r["lsid"] for r in unended} == abnormal | running
    assert all(r["start_time"] and r["duration_seconds"] == 0 and "session_chat_view_url" not in r for r in unended)
    assert "New replication value is null" not in first.stderr, "no warning for each session without an end"
    listing = first.records("support_session_listing")
    assert len(listing) == len({r["lsid"] for r in listing}) == app.session_total
    index = {app.lsid(i): i for i in range(app.session_total)}
    events = [e for e in first.records("support_session_events") if e["lsid"] in abnormal]
    assert len(events) == sum(app.session_event_count(index[lsid]) for lsid in abnormal)
    assert all(e["session_end_time"] is None for e in events)
    # the end_time windows never name them; the start_time listing does, then lsids
    assert not abnormal & {r["lsid"] for r in sessions if r["end_time"]}
    ended = [c for c in reports(bt, "SupportSessionListing", "end_time") if c["params"]["duration"] == "0"]
    assert len(ended) == 2, "the sessions that ended since: once for each of the two streams"
    by_lsids = [lsid for c in reports(bt, "SupportSession", "lsids") for lsid in c["params"]["lsids"].split(",")]
    assert set(by_lsids) == abnormal | running and len(by_lsids) == len(set(by_lsids))
    state = first.bookmark("support_sessions")
    assert state["unended_checked_to"] >= state["replication_key_value"], "checked up to the sync's end"

    app.advance(new=2, abnormal=3)  # three more close abnormally, the running ones end
    time.sleep(1.1)
    bt.clear_log()
    before = int(time.time())
    second = ok(run_tap(TAP, config_for(bt), state=first.state, streams=SESSION_STREAMS))
    after = int(time.time())
    lo = min(int(c["params"]["start_time"]) for c in reports(bt, "SupportSessionListing", "start_time"))
    assert before - 3 * 86400 <= lo <= after - 3 * 86400, "unended_session_days (3) before the sync's end"
    again = {r["lsid"]: r for r in second.records("support_sessions")}
    now_abnormal = set(app.info()["abnormal_sessions"])
    recent = {app.lsid(i) for i in range(app.session_total)
              if app.closed_abnormally(i) and app.session_times(i)[0] >= lo}
    assert len(now_abnormal - abnormal) == 3 and now_abnormal - abnormal <= recent
    assert {lsid for lsid, r in again.items() if r["end_time"] is None} == recent
    assert all(again[lsid]["end_time"] for lsid in running), "the running ones ended: with their end"
    total = {r["lsid"] for r in sessions} | set(again)
    assert len(total) == app.info()["expected_counts"]["support_sessions"] == app.session_total
    assert now_abnormal <= total, "none is lost"
    assert len(second.records("support_session_listing")) == len(again)


def test_unended_pass_covers_a_gap_longer_than_unended_session_days(bt):
    app = bt.app
    first = ok(run_tap(TAP, config_for(bt), streams=["support_session_listing"]))
    checked = first.bookmark("support_session_listing")["unended_checked_to"]
    old = dt.datetime.fromisoformat(checked) - dt.timedelta(days=2)
    state = json.loads(json.dumps(first.state))
    state["bookmarks"]["support_session_listing"]["unended_checked_to"] = old.isoformat()
    bt.clear_log()
    second = ok(run_tap(TAP, config_for(bt, unended_session_days=1), state=state,
                        streams=["support_session_listing"]))
    lo = min(int(c["params"]["start_time"]) for c in reports(bt, "SupportSessionListing", "start_time"))
    assert lo == int(old.timestamp()) - 60, "from the last pass (less lookback_seconds), not only a day back"
    expected = {app.lsid(i) for i in range(app.session_total)
                if app.session_times(i)[1] is None and app.session_times(i)[0] >= lo}
    assert {r["lsid"] for r in second.records("support_session_listing")} == expected


# ------------------------------------------------------------------ licence usage
def test_license_usage_is_one_row_per_period_keyed_by_period_with_its_peak(bt):
    app = bt.app
    first = ok(run_tap(TAP, config_for(bt), streams=["license_usage"]))
    rows = first.records("license_usage")
    assert first.schema("license_usage")["key_properties"] == ["group_by", "period_start"]
    assert len(rows) == len({r["period_start"] for r in rows}) == app.info()["expected_counts"]["license_usage"]
    for r in rows:
        start = dt.datetime.fromisoformat(r["period_start"])
        peak = dt.datetime.fromisoformat(r["timestamp"])
        assert start.astimezone(app.tz).time() == dt.time(0, 0), "the appliance's (-05:00) midnight"
        assert start < peak < start + dt.timedelta(days=1), "the peak lies inside its period"
        assert dt.datetime.fromisoformat(r["datetime"]) == peak and r["datetime"].endswith("-05:00")
        assert r["license_counts"][0]["count"] in (9, 10)
    latest = max(r["period_start"] for r in rows)

    app.advance()  # a higher peak (11) now, in the current period
    bt.clear_log()
    second = ok(run_tap(TAP, config_for(bt), state=first.state, streams=["license_usage"]))
    (call,) = reports(bt, "LicenseUsage")
    assert utc(int(call["params"]["start_time"])) == latest, "the latest period is read again, whole"
    current = max(second.records("license_usage"), key=lambda r: r["period_start"])
    assert current["license_counts"][0]["count"] == 11
    assert current["timestamp"] == utc(app.extra_peaks[-1][0])
    both = {(r["group_by"], r["period_start"]) for r in rows + second.records("license_usage")}
    assert len(both) == app.info()["expected_counts"]["license_usage"], "two syncs: one row per period"


def test_license_usage_by_hour_keys_each_hour(bt):
    app = bt.app
    run = ok(run_tap(TAP, config_for(bt, license_group_by="hour"), streams=["license_usage"]))
    rows = run.records("license_usage")
    hours = {app.group_start(m, "hour") for m, _ in app.peaks(0, 1 << 40)}
    assert sorted(r["period_start"] for r in rows) == sorted(utc(h) for h in hours)
    assert all(r["group_by"] == "hour" and r["timestamp"] != r["period_start"] for r in rows)


# ------------------------------------------------------------------ event archives
def test_blank_archive_values_load_as_null_and_odd_lines_are_kept_whole(sandbox_factory):
    server = sandbox_factory("beyondtrust", scale=50, days=2, archive_count=2, archive_events=300,
                             archive_odd_lines=True)
    run = ok(run_tap(TAP, archive_config(server), streams=[*ARCHIVE_STREAMS, "archive_customer_client"]))
    expected = server.app.info()["expected_counts"]
    for stream in [*ARCHIVE_STREAMS, "archive_customer_client"]:
        found = keys(run, stream)
        assert len(found) == len(set(found)) == expected[stream], stream

    blank = [r for r in run.records("archive_support_session")
             if r["event_type"] == "model_insert" and r["customer_name"] == ""]
    assert blank, "the sandbox sends model_insert rows with blank fields"
    for r in blank:  # blank integer and timestamp fields are null, blank text stays text
        assert r["customer_company"] == "" and known_extra(r["extra"]) is None
        assert r["priority"] is None and r["queue_entry_timestamp"] is None
        assert isinstance(r["queue_id"], int) and r["created_timestamp"]
    reps = run.records("archive_representative")
    inserts = [r for r in reps if r["event_type"] == "model_insert"]
    assert {r["routing_available"] for r in inserts} == {False, None}
    assert {r["console_in_focus"] for r in reps} == {True, False, None}
    assert {r["connected"] for r in reps} == {True, False}
    assert all(known_extra(r["extra"]) is None for r in reps)

    odd_rows = [r for r in run.records("archive_customer_client") if r.get("hostname") == "odd-host"]
    assert len(odd_rows) == len(server.app.archive_slots)
    odd = odd_rows[0]
    assert (odd["connected"], odd["elevated"], odd["support_session_id"], odd["created_timestamp"]) == (
        None, True, None, None)
    assert odd["hostname"] == "odd-host"
    assert odd["extra"] == {"connected": "maybe", "support_session_id": "abc", "created_timestamp": "soon",
                            "tags": ["a", "b"]}
    other = [r for r in run.records("archive_other_events") if r["table"] != "representative_status"]
    assert len(other) == 6 * len(server.app.archive_slots)
    first = [r for r in other if r["archive_index"] == other[0]["archive_index"]]
    assert [r["data"] for r in first] == [
        {"value": [{"support_session": {}}]}, {"value": [{"connected": 1}]}, {"value": ["code", "name"]}, None,
        {"value": ["not", "an", "object"]}, {"text": "{not json"}]
    assert [(r["event_type"], r["table"], r["row_key"]) for r in first] == [
        ("model_insert", None, "*"), ("model_update", "representative", "representative/*"),
        ("model_update", "queue", "queue/5"), ("model_insert", None, "*"), (None, None, "*"), (None, None, "*")]
    for what in ("model_insert lines without a table", "a line that is not JSON", "customer_client.connected"):
        assert run.stderr.count(what) == 1, what


def test_archives_as_documented_give_no_shape_warning(bt):
    run = ok(run_tap(TAP, archive_config(bt), streams=ARCHIVE_STREAMS))
    assert "does not describe" not in run.stderr
    assert all(r["table"] == "representative_status" and r["row_key"].startswith("representative_status/")
               for r in run.records("archive_other_events"))


# ------------------------------------------------------------------ surveys, Vault, event ids
def test_surveys_of_sessions_no_representative_accepted_are_loaded(bt):
    app = bt.app
    run = ok(run_tap(TAP, config_for(bt), streams=["customer_exit_surveys", "rep_exit_surveys"]))
    unaccepted = {app.lsid(i) for i in range(app.session_total)
                  if not app.accepted(i) and app.session_times(i)[1] is not None and app.has_survey(i, "cust")}
    surveys = {r["lsid"]: r for r in run.records("customer_exit_surveys")}
    assert unaccepted and unaccepted <= set(surveys)
    assert all("primary_rep" not in surveys[lsid] and surveys[lsid]["primary_team"]["id"] for lsid in unaccepted)
    expected = app.info()["expected_counts"]
    assert len(run.records("customer_exit_surveys")) == len(surveys) == expected["customer_exit_surveys"]
    assert len(run.records("rep_exit_surveys")) == expected["rep_exit_surveys"]


def test_vault_account_is_read_whatever_its_case(bt):
    run = ok(run_tap(TAP, config_for(bt), streams=["vault_account_activity"]))
    rows = run.records("vault_account_activity")
    assert rows and all(isinstance(r["account_id"], int) and r["account"] == str(r["account_id"]) for r in rows)
    assert all(known_extra(r["extra"]) is None for r in rows)


def test_vault_account_that_is_not_a_number_is_kept_as_sent():
    from lxml import etree

    from tap_beyondtrust import xmlrows

    ns = "https://www.beyondtrust.com/namespaces/API/reporting"
    for xml, account, account_id in [
        (f'<vault_account_activity xmlns="{ns}" timestamp="1730448000" event_type="Account Created">'
         "<Account>shared-7</Account></vault_account_activity>", "shared-7", None),
        (f'<vault_account_activity xmlns="{ns}" ACCOUNT=" 42 " event_type="Account Deleted"/>', "42", 42),
        (f'<vault_account_activity xmlns="{ns}"><account_id>9</account_id></vault_account_activity>', "9", 9),
    ]:
        record = xmlrows.vault_record(etree.fromstring(xml))
        assert (record["account"], record["account_id"], record["extra"]) == (account, account_id, None)


def test_renamed_teams_and_jump_groups_keep_their_event_ids(bt):
    streams = ["team_activity", "jump_items"]
    before = ok(run_tap(TAP, config_for(bt), streams=streams))
    bt.app.rename_teams_and_groups(" (renamed)")
    after = ok(run_tap(TAP, config_for(bt), streams=streams))  # the same range read again
    assert all(r["team_name"].endswith(" (renamed)") for r in after.records("team_activity"))
    assert all(r["jump_group"]["name"].endswith(" (renamed)") for r in after.records("jump_items"))
    for stream in streams:
        assert sorted(keys(before, stream)) == sorted(keys(after, stream)), stream
        assert len(set(keys(after, stream))) == bt.app.info()["expected_counts"][stream]


# ------------------------------------------------------------------ nothing the appliance sends is lost
def test_every_stream_keeps_undocumented_fields_in_extra(bt):
    """The sandbox sends an ``undocumented_*`` element, attribute or key in some rows of every
    report and archive; each reaches its record's ``extra``."""
    # from the sandbox's first day: every report holds rows whatever the hour (from the first
    # archive's day, a sync just after midnight read an hour of team activity, none undocumented)
    run = ok(run_tap(TAP, config_for(bt, start_date=utc(bt.app.first_ts))))
    with_extra = [s for s in run.counts() if "extra" in run.schema(s)["schema"]["properties"]]
    assert len(with_extra) == len(run.counts()), "every stream has an extra column"
    for stream in with_extra:
        found = [k for r in run.records(stream) for k in (r.get("extra") or {}) if k.startswith("undocumented_")]
        assert found, f"{stream}: no undocumented_* key reached extra"


class _Collect:
    def __init__(self):
        self.records = []

    def feed(self, record):
        self.records.append(record)


ROUTED_LINES = [
    # (line, stream, columns the tap maps for it)
    ({"type": "model_insert", "timestamp": 1730448000,
      "data": {"queue": {"5": {"name": "Tier 1", "undocumented_a": 1}}}, "undocumented_line": "x"},
     "archive_queue", {"name"}),
    ({"type": "model_update", "timestamp": 1730448000, "table": "queue", "id": 6, "data": {"code_name": "t1"},
      "undocumented_source": "replica", "sequence": 4}, "archive_queue", {"code_name"}),
    ({"type": "model_update", "timestamp": "not a time", "data": {"queue": {"7": {"name": "n"}}}},
     "archive_queue", {"name"}),
    ({"type": "model_update", "timestamp": 1730448000, "data": {"queue": {"8": {"name": "row", "origin": "row"}}},
      "origin": "line"}, "archive_queue", {"name"}),
    ({"type": "model_delete", "timestamp": 1730448000, "data": {"queue": None}, "undocumented_why": "logout"},
     "archive_queue", set()),
    ({"type": "model_insert", "timestamp": 1730448000, "data": {"mystery": {"1": {"a": 1}}}, "undocumented_m": 2},
     "archive_other_events", set()),
    ({"type": "model_insert", "timestamp": 1730448000, "data": {"queue": {"9": ["not", "an", "object"]}},
      "undocumented_n": 3}, "archive_other_events", set()),
    ({"type": "session_event", "timestamp": 1730448000, "lsid": "abc", "name": "chat_message", "data": {"body": "hi"},
      "undocumented_node": "n1"}, "archive_session_events", {"lsid", "name", "data"}),
    ({"type": "truncate_model", "timestamp": "soon", "undocumented_reason": "restart"}, "archive_truncate_events",
     set()),
    ({"type": "model_insert", "timestamp": 1730448000, "rows": {"queue": {}}}, "archive_other_events", set()),
    ({"type": "heartbeat", "timestamp": 1730448000, "undocumented_beat": 1}, "archive_other_events", set()),
]


def values_of(line):
    """The fields of the one row of a model line of ROUTED_LINES (None if it has none)."""
    rows = line.get("data")
    if not isinstance(rows, dict):
        return None
    if "table" in line:
        return rows
    table = next(iter(rows.values()))
    return next(iter(table.values())) if isinstance(table, dict) else None


@pytest.mark.parametrize(("line", "stream", "mapped"), ROUTED_LINES)
def test_every_key_of_an_archive_line_reaches_a_column_or_extra(line, stream, mapped):
    from tap_beyondtrust.tap import TapBeyondTrust

    tap = TapBeyondTrust(config={"api_url": "https://support.example.com", "client_id": "c",
                                 "client_secret": "s"}, validate_config=True)
    parent = tap.streams["event_archives"]
    children = {name: _Collect() for name in ("archive_queue", "archive_other_events", "archive_session_events",
                                              "archive_truncate_events")}
    parent.targets = children
    parent._route("2024-11-01", 3, 1, json.dumps(line).encode())
    (record,) = [r for c in children.values() for r in c.records]
    assert record in children[stream].records
    extra = record.get("extra") or {}
    for key, value in line.items():
        if key in ("type", "data") or (key == "timestamp" and record["timestamp"]):
            continue
        if key in ("table", "id") and stream == "archive_queue":
            continue
        if stream == "archive_session_events" and key in mapped:
            assert record[key] == value
            continue
        assert extra.get(key if key not in (values_of(line) or {}) else "line:" + key) == value, \
            f"line key {key!r} lost"
    values = values_of(line)
    if stream == "archive_queue" and isinstance(values, dict):
        for key, value in values.items():
            if key in mapped:
                assert record[key] == value
            else:
                assert extra.get(key) == value, f"row key {key!r} lost"
    if "origin" in line:  # a row field and a line key of one name: both kept
        assert extra["origin"] == "row" and extra["line:origin"] == "line"
