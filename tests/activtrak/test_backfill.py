"""tap-activtrak backfills as the README says to run them: a past period under
its own state (none yet: from start_date through the end_date day), the regular state
untouched, and the next regular run continuing where it was; and a bounded
sync on the regular state, which keeps its cursor apart."""

from __future__ import annotations

import datetime as dt
import json

from tests.taputil import run_tap

TAP = "tap-activtrak"


def config_for(server, **extra):
    return {
        "api_url": server.url,
        "api_token": "sandbox-activtrak-token",
        "start_date": server.app.first_day.isoformat(),
        "retry_backoff_seconds": 0.01,
        **extra,
    }


def test_a_backfill_reads_its_period_and_the_regular_run_continues(sandbox_factory):
    server = sandbox_factory("activtrak", scale=1200, days=5, users=3, computers=2)
    app = server.app
    regular = run_tap(TAP, config_for(server))
    assert regular.returncode == 0, regular.stderr[-2000:]
    saved = json.loads(json.dumps(regular.state))

    first, last = app.first_day + dt.timedelta(days=1), app.first_day + dt.timedelta(days=2)
    in_period = {seq + 1 for seq in range(app.total)
                 if first.isoformat() <= app.activity(seq)["date"][:10] <= last.isoformat()}
    server.clear_log()
    config = config_for(server, start_date=first.isoformat(), end_date=last.isoformat())
    # under its own state (none yet), and on the regular one: a bounded sync
    # without a backfill cursor of its own starts at start_date either way
    for state in (None, saved):
        backfill = run_tap(TAP, config, state=state)
        assert backfill.returncode == 0, backfill.stderr[-2000:]
        assert {r["logId"] for r in backfill.records("activity_log")} == in_period
        assert len(backfill.records("activity_log")) == len(in_period)
        days = {r["date"][:10] for r in backfill.records("working_hours_users")}
        assert days == {first.isoformat(), last.isoformat()}
        assert server.logged("activitylog")[0]["params"]["startDate"] == first.isoformat()
        assert server.logged("activitylog")[0]["params"]["endDate"] == last.isoformat()
        server.clear_log()
    assert backfill.bookmark("activity_log")["cursor"] == saved["bookmarks"]["activity_log"]["cursor"]

    change = app.advance(new=5, late=2, late_days_ago=2)
    following = run_tap(TAP, config_for(server), state=saved, streams=["activity_log"])
    assert following.returncode == 0, following.stderr[-2000:]
    assert [r["logId"] for r in following.records("activity_log")] == list(
        range(change["first_log_id"], change["first_log_id"] + 7))


def test_an_end_date_time_ends_the_period_at_that_instant(sandbox_factory):
    server = sandbox_factory("activtrak", scale=1200, days=5, users=3, computers=2, today="2026-11-05")
    app = server.app
    # noon UTC on the third day: the log stops there, that day's working hours are read whole
    third = app.first_day + dt.timedelta(days=2)
    end = dt.datetime.combine(third, dt.time(12), dt.timezone.utc)
    config = config_for(server, end_date=end.isoformat())
    run = run_tap(TAP, config, streams=["activity_log", "working_hours_users"])
    assert run.returncode == 0, run.stderr[-2000:]
    expected = {seq + 1 for seq in range(app.total) if app.instant(seq) < end}
    assert {r["logId"] for r in run.records("activity_log")} == expected
    assert len(run.records("activity_log")) == len(expected) and 0 < len(expected) < app.total
    assert server.logged("activitylog")[0]["params"]["endDate"] == third.isoformat()
    days = sorted({r["date"][:10] for r in run.records("working_hours_users")})
    assert days == [(app.first_day + dt.timedelta(days=i)).isoformat() for i in range(3)]
    assert run.bookmark("activity_log")["backfill_cursor"]["end_date"] == end.isoformat()
    # the midnight that starts the third day: the day before is the last one synced
    midnight = run_tap(TAP, config_for(server, end_date=third.isoformat() + "T00:00:00Z"),
                       streams=["working_hours_users"])
    assert {r["date"][:10] for r in midnight.records("working_hours_users")} == {
        app.first_day.isoformat(), (app.first_day + dt.timedelta(days=1)).isoformat()}


def test_a_page_wholly_after_the_end_instant_does_not_end_the_backfill(sandbox_factory):
    # ~2,500 entries a day: the pages after 02:00 on the fourth day hold no
    # entry before end_date, and the late entries arrive after them
    server = sandbox_factory("activtrak", scale=15000, days=6, users=3, computers=2)
    app = server.app
    end = dt.datetime.combine(app.first_day + dt.timedelta(days=3), dt.time(2), dt.timezone.utc)
    change = app.advance(new=0, late=3, late_days_ago=4)
    run = run_tap(TAP, config_for(server, end_date=end.isoformat()), streams=["activity_log"])
    assert run.returncode == 0, run.stderr[-2000:]
    expected = {seq + 1 for seq in range(app.total) if app.instant(seq) < end}
    late = set(range(change["first_log_id"], change["first_log_id"] + 3))
    assert late <= expected
    assert {r["logId"] for r in run.records("activity_log")} == expected
