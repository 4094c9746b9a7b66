"""tap-activtrak against the ActivTrak sandbox: counts, state, faults, errors."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.taputil import assert_no_secret, run_tap, run_tap_until

TAP = "tap-activtrak"
TOKEN = "sandbox-activtrak-token"


def config_for(server, **extra):
    return {
        "api_url": server.url + "/",  # a trailing slash is tolerated
        "api_token": TOKEN,
        "start_date": server.app.first_day.isoformat(),
        "retry_backoff_seconds": 0.01,
        **extra,
    }


def log_ids(records):
    return [r["logId"] for r in records]


@pytest.fixture
def activtrak(sandbox_factory):
    # 2,500 entries: two full pages of 1,000 and a partial one
    return sandbox_factory("activtrak", scale=2500, days=6, users=7, computers=4)


def test_every_record_arrives_once_across_pages(activtrak):
    run = run_tap(TAP, config_for(activtrak))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.counts() == {"activity_log": 2500, "working_hours_users": 6 * 7, "working_hours_computers": 6 * 4}
    assert sorted(log_ids(run.records("activity_log"))) == list(range(1, 2501))
    users = run.records("working_hours_users")
    assert len({(r["date"], r["computerid"], r["users_key"]) for r in users}) == 42

    requests = activtrak.logged("activitylog")
    assert all(r["auth"] and r["params"]["pageSize"] == "1000" for r in requests)
    assert "startDate" in requests[0]["params"] and "cursor" not in requests[0]["params"]
    assert all("cursor" in r["params"] for r in requests[1:])
    # 3 pages with rows, then the empty page that returns the same cursor
    assert len(requests) == 4
    assert requests[-1]["params"]["cursor"] == run.bookmark("activity_log")["cursor"]


def test_records_are_typed_and_in_utc(activtrak):
    run = run_tap(TAP, config_for(activtrak), streams=["activity_log", "working_hours_computers"])
    entry = run.records("activity_log")[0]
    assert isinstance(entry["logId"], int)
    assert entry["date"].endswith("+00:00")
    dt.datetime.fromisoformat(entry["date"])
    properties = run.schema("activity_log")["schema"]["properties"]
    assert properties["date"]["format"] == "date-time"
    assert run.schema("activity_log")["key_properties"] == ["logId"]
    row = run.records("working_hours_computers")[0]
    assert set(row["activeTime"]) == {"productive", "unproductive", "undefined", "total"}
    assert row["activeTime"]["total"] == (
        row["activeTime"]["productive"] + row["activeTime"]["unproductive"] + row["activeTime"]["undefined"])
    assert row["firstActivity"].endswith("+00:00")
    assert run.schema("working_hours_computers")["key_properties"] == ["date", "userid", "computers_key"]


def test_working_hours_pages_within_a_day(sandbox_factory):
    server = sandbox_factory("activtrak", scale=10, days=2, users=1100, computers=3)
    # end_date: the sandbox's today, whatever the day when the tap runs
    run = run_tap(TAP, config_for(server, end_date=server.app.today.isoformat()), streams=["working_hours_users"])
    assert run.returncode == 0, run.stderr[-2000:]
    rows = run.records("working_hours_users")
    assert len(rows) == 2200
    assert len({(r["date"], r["users_key"]) for r in rows}) == 2200
    pages = [(r["params"]["from"], r["params"]["to"], r["params"]["page"]) for r in server.logged("workinghours")]
    first, today = server.app.first_day.isoformat(), server.app.today.isoformat()
    assert pages == [(first, first, "1"), (first, first, "2"), (today, today, "1"), (today, today, "2")]


def test_second_sync_emits_only_new_and_late_entries(activtrak):
    first = run_tap(TAP, config_for(activtrak))
    assert first.returncode == 0
    change = activtrak.app.advance(new=7, late=4, late_days_ago=3)
    activtrak.clear_log()
    second = run_tap(TAP, config_for(activtrak), state=first.state)
    assert second.returncode == 0, second.stderr[-2000:]
    entries = second.records("activity_log")
    assert log_ids(entries) == list(range(change["first_log_id"], change["first_log_id"] + 11))
    late = [e for e in entries if e["date"] < first.bookmark("activity_log")["replication_key_value"][:10]]
    assert len(late) == 4
    # the cursor moved on: a third sync finds nothing new
    third = run_tap(TAP, config_for(activtrak), state=second.state, streams=["activity_log"])
    assert third.counts() == {}
    assert third.bookmark("activity_log")["cursor"] == second.bookmark("activity_log")["cursor"]


def test_working_hours_rereads_the_lookback_days(activtrak):
    until = activtrak.app.today.isoformat()  # the sandbox's today, whatever the day when the tap runs
    first = run_tap(TAP, config_for(activtrak, end_date=until), streams=["working_hours_users"])
    activtrak.app.advance(grow_today=900)
    activtrak.clear_log()
    second = run_tap(TAP, config_for(activtrak, lookback_days=1, end_date=until), state=first.state,
                     streams=["working_hours_users"])
    today = activtrak.app.today
    days = sorted({r["params"]["from"] for r in activtrak.logged("workinghours")})
    assert days == [(today - dt.timedelta(days=1)).isoformat(), today.isoformat()]
    assert second.counts() == {"working_hours_users": 2 * 7}
    day = today.isoformat()
    before = {r["users_key"]: r for r in first.records("working_hours_users") if r["date"].startswith(day)}
    after = {r["users_key"]: r for r in second.records("working_hours_users") if r["date"].startswith(day)}
    assert all(after[k]["activeTime"]["productive"] == before[k]["activeTime"]["productive"] + 900 for k in before)


def test_killed_sync_resumes_from_its_last_state_and_loses_nothing(sandbox_factory):
    server = sandbox_factory("activtrak", scale=6000, days=5)
    killed = run_tap_until(TAP, config_for(server), records_before_kill=3500, streams=["activity_log"])
    assert killed.returncode != 0
    seen = set(log_ids(killed.records("activity_log")))
    assert 3500 <= len(seen) < 6000
    saved = killed.state  # the last STATE the tap wrote before it died
    assert "cursor" in saved["bookmarks"]["activity_log"]
    resumed = run_tap(TAP, config_for(server), state=saved, streams=["activity_log"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = log_ids(resumed.records("activity_log"))
    assert seen | set(again) == set(range(1, 6001))
    # resumption re-reads at most the one page that was in flight
    assert len(seen & set(again)) <= 1000


TRANSIENT_FAULTS = [
    pytest.param({"kind": "status", "status": 429, "retry_after": 1}, id="429-retry-after"),
    pytest.param({"kind": "status", "status": 500}, id="500"),
    pytest.param({"kind": "status", "status": 502, "times": 2}, id="502-twice"),
    pytest.param({"kind": "status", "status": 503}, id="503"),
    pytest.param({"kind": "slow", "delay": 3}, id="slow-past-timeout"),
    pytest.param({"kind": "reset"}, id="connection-reset"),
    pytest.param({"kind": "truncate"}, id="truncated-body"),
]


@pytest.mark.parametrize("fault", TRANSIENT_FAULTS)
def test_transient_faults_are_retried_and_lose_nothing(activtrak, fault):
    activtrak.add_fault(path="activitylog", skip=1, **fault)
    run = run_tap(TAP, config_for(activtrak, request_timeout=1), streams=["activity_log"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(log_ids(run.records("activity_log"))) == list(range(1, 2501))
    faulted = [r for r in activtrak.logged("activitylog") if r["fault"]]
    assert len(faulted) == fault.get("times", 1)
    if fault.get("retry_after"):
        retried = activtrak.logged("activitylog")
        index = next(i for i, r in enumerate(retried) if r["fault"])
        assert retried[index + 1]["time"] - retried[index]["time"] >= 0.9


def test_retries_give_up_with_a_clear_error(activtrak):
    activtrak.add_fault("status", status=503, path="activitylog", times=10)
    run = run_tap(TAP, config_for(activtrak, max_retries=3), streams=["activity_log"])
    assert run.returncode != 0
    assert "503" in run.stderr and "/reports/v2/activitylog" in run.stderr
    assert len(activtrak.logged("activitylog")) == 3


def test_malformed_page_fails_loudly(activtrak):
    activtrak.add_fault("malformed", path="activitylog", skip=1)
    run = run_tap(TAP, config_for(activtrak), streams=["activity_log"])
    assert run.returncode != 0
    assert "not JSON" in run.stderr and "/reports/v2/activitylog" in run.stderr
    # the first page was written, nothing after the bad one
    assert len(run.records("activity_log")) == 1000


def test_bad_token_fails_clearly_without_revealing_it(activtrak):
    secret = "wrong-token-5f2b9c"
    run = run_tap(TAP, {**config_for(activtrak), "api_token": secret}, streams=["activity_log"])
    assert run.returncode != 0
    assert "401" in run.stderr and "api_token" in run.stderr
    assert run.records() == []
    assert_no_secret(run, secret)
    assert len(activtrak.logged()) == 1  # a 401 is not retried


def test_vendor_error_message_reaches_the_user(activtrak):
    state = {"bookmarks": {"activity_log": {"cursor": "not-a-cursor"}}}
    run = run_tap(TAP, config_for(activtrak), state=state, streams=["activity_log"])
    assert run.returncode != 0
    assert "Invalid cursor" in run.stderr and "400" in run.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"user_id": 1, "group_id": 2}, "Only one of user_id, group_id, computer_id"),
        ({"start_date": "last tuesday"}, "start_date"),
        ({"api_url": "ftp://example.com"}, "api_url"),
        ({"window_days": 0}, "window_days"),
        ({"api_token": None}, "api_token"),
        ({"lookback_days": "two"}, "lookback_days"),
        ({"api_token": 987654321}, "<api_token>"),  # the schema error quotes the value: masked
    ],
)
def test_bad_config_fails_before_any_request(activtrak, change, message):
    config = {k: v for k, v in {**config_for(activtrak), **change}.items() if v is not None}
    run = run_tap(TAP, config)
    assert run.returncode != 0
    assert message in run.stderr
    assert activtrak.logged() == []
    if "api_token" in config:
        assert_no_secret(run, str(config["api_token"]))


def test_one_entity_filter_is_sent(activtrak):
    run = run_tap(TAP, config_for(activtrak, user_id=3), streams=["activity_log", "working_hours_users"])
    assert run.returncode == 0, run.stderr[-2000:]
    entries = run.records("activity_log")
    assert entries and {e["user"] for e in entries} == {"user003"}
    assert all(r["params"].get("userId") == "3" for r in activtrak.logged())
    assert {r["users_key"] for r in run.records("working_hours_users")} == {"user003"}


def test_end_date_bounds_a_backfill(activtrak):
    first_day = activtrak.app.first_day
    end = first_day + dt.timedelta(days=1)
    run = run_tap(TAP, config_for(activtrak, end_date=end.isoformat()), streams=["activity_log", "working_hours_users"])
    assert run.returncode == 0, run.stderr[-2000:]
    entries = run.records("activity_log")
    assert entries and max(e["date"] for e in entries) < (end + dt.timedelta(days=1)).isoformat()
    assert {r["date"][:10] for r in run.records("working_hours_users")} == {first_day.isoformat(), end.isoformat()}


def test_a_backfill_bounded_by_end_date_does_not_cost_later_syncs_any_entry(activtrak):
    # a late entry dated inside the backfill's range makes the cursor, which
    # follows arrival order, go past every entry dated after end_date
    activtrak.app.advance(new=5, late=3, late_days_ago=4)
    expected = activtrak.app.info()["expected_counts"]["activity_log"]
    end = activtrak.app.first_day + dt.timedelta(days=2)
    backfill = run_tap(TAP, config_for(activtrak, end_date=end.isoformat()), streams=["activity_log"])
    assert backfill.returncode == 0, backfill.stderr[-2000:]
    bounded = set(log_ids(backfill.records("activity_log")))
    assert bounded and "cursor" not in backfill.bookmark("activity_log")
    assert backfill.bookmark("activity_log")["backfill_cursor"]["end_date"] == end.isoformat()
    after = run_tap(TAP, config_for(activtrak), state=backfill.state, streams=["activity_log"])
    assert after.returncode == 0, after.stderr[-2000:]
    assert len(bounded | set(log_ids(after.records("activity_log")))) == expected
    # the unbounded cursor is kept apart: a backfill between two syncs leaves it as it was
    cursor = after.bookmark("activity_log")["cursor"]
    again = run_tap(TAP, config_for(activtrak, end_date=end.isoformat()), state=after.state, streams=["activity_log"])
    assert again.returncode == 0 and again.bookmark("activity_log")["cursor"] == cursor
    new = activtrak.app.advance(new=4, late=0)
    last = run_tap(TAP, config_for(activtrak), state=again.state, streams=["activity_log"])
    assert log_ids(last.records("activity_log")) == list(range(new["first_log_id"], new["first_log_id"] + 4))


def test_days_without_rows_do_not_stop_the_windows(activtrak):
    # start_date ten days before the sandbox's first day: ten empty windows first
    start = activtrak.app.first_day - dt.timedelta(days=10)
    config = config_for(activtrak, start_date=start.isoformat(), end_date=activtrak.app.today.isoformat())
    run = run_tap(TAP, config, streams=["working_hours_computers"])
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.counts() == {"working_hours_computers": 6 * 4}
    assert len(activtrak.logged("workinghours")) == 16


def test_without_start_date_the_first_sync_starts_30_days_ago(activtrak):
    config = {k: v for k, v in config_for(activtrak).items() if k != "start_date"}
    today = dt.datetime.now(dt.timezone.utc).date()
    run = run_tap(TAP, config, streams=["activity_log", "working_hours_users"])
    assert run.returncode == 0, run.stderr[-2000:]
    # the tap's today is the one before the run, or the next day if the run crossed midnight
    thirty_days_ago = {(day - dt.timedelta(days=30)).isoformat()
                       for day in (today, dt.datetime.now(dt.timezone.utc).date())}
    assert activtrak.logged("activitylog")[0]["params"]["startDate"] in thirty_days_ago
    assert activtrak.logged("workinghours")[0]["params"]["from"] in thirty_days_ago
    # the sandbox's six days are all within the last 30
    assert run.counts() == {"activity_log": 2500, "working_hours_users": 6 * 7}


def test_list_items_of_any_type_are_kept_and_keyed(activtrak, monkeypatch):
    # the document shows "groups": [] and "users": [] only: ids or objects
    # must load as well as names, and still make distinct keys
    import jsonschema

    serve = activtrak.app.working_hours

    def with_ids(view, day, entity):
        row = serve(view, day, entity)
        row["users"] = [entity + 1, {"id": entity + 1, "name": row["users"][0]}]
        row["groups"] = [entity % 3]
        return row

    monkeypatch.setattr(activtrak.app, "working_hours", with_ids)
    run = run_tap(TAP, config_for(activtrak), streams=["working_hours_users"])
    assert run.returncode == 0, run.stderr[-2000:]
    rows = run.records("working_hours_users")
    assert len(rows) == activtrak.app.info()["expected_counts"]["working_hours_users"]
    assert len({(r["date"], r["computerid"], r["users_key"]) for r in rows}) == len(rows)
    validator = jsonschema.Draft7Validator(run.schema("working_hours_users")["schema"])
    assert all(not list(validator.iter_errors(row)) for row in rows)
    assert rows[0]["users_key"].startswith(f"{rows[0]['users'][0]},{{")
