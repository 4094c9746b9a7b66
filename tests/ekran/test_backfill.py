"""tap-ekran backfills as the README says to run them: a past period under
its own state (none yet: start_date to end_date), the regular state untouched,
and the next regular run continuing where it was."""

from __future__ import annotations

import datetime as dt
import json

from tests.taputil import run_tap

TAP = "tap-ekran"
UTC = dt.timezone.utc
#: the sandbox's clock when it generates its sessions (yesterday at noon UTC: the same sessions whatever the hour);
#: each regular run runs "at" a given time on it, passed as end_date, so that
#: no test depends on the wall clock's second
CLOCK = dt.datetime.combine(dt.datetime.now(UTC).date() - dt.timedelta(days=1), dt.time(18), UTC)


def config_for(server, **extra):
    return {
        "api_url": server.url,
        "api_token": "sandbox-ekran-api-key",
        "start_date": dt.datetime.combine(server.app.first_day, dt.time(), UTC).isoformat(),
        "page_size": 100,
        "lookback_hours": 0,
        "retry_backoff_seconds": 0.01,
        **extra,
    }


def test_a_backfill_under_its_own_state_leaves_the_regular_runs_as_they_were(sandbox_factory):
    server = sandbox_factory("ekran", scale=600, days=3, users=5, clients=4, now=CLOCK.isoformat())
    app = server.app
    regular = run_tap(TAP, config_for(server, end_date=(CLOCK + dt.timedelta(seconds=30)).isoformat()))
    assert regular.returncode == 0, regular.stderr[-3000:]
    saved = json.loads(json.dumps(regular.state))

    # the backfill: the second day, no state (end_date, a date, ends at the midnight after it)
    start = dt.datetime.combine(app.first_day + dt.timedelta(days=1), dt.time(), UTC)
    end = start + dt.timedelta(days=1)
    server.clear_log()
    backfill = run_tap(TAP, config_for(server, start_date=start.date().isoformat(), end_date=start.date().isoformat()))
    assert backfill.returncode == 0, backfill.stderr[-3000:]
    assert {json.loads(e["body"])["start"] for e in server.logged("/ekranapi/sessions")} == {
        start.strftime("%Y-%m-%dT%H:%M:%S")}
    # from start_date, to end_date exclusive: the sessions that logged in before it
    wanted = {sid for sid in app.select(start.timestamp(), None) if app.times(sid)[0] < end.timestamp()}
    assert {r["sessionId"] for r in backfill.records("sessions")} == wanted
    assert len(backfill.records("sessions")) == len(wanted)
    assert backfill.bookmark("sessions")["replication_key_value"] <= end.isoformat()

    # the next regular run, on the regular state: what it would have read anyway
    changes = app.advance(now=(CLOCK + dt.timedelta(hours=1)).isoformat())
    server.clear_log()
    following = run_tap(TAP, config_for(server, end_date=(CLOCK + dt.timedelta(hours=1, seconds=30)).isoformat()),
                        state=saved)
    assert following.returncode == 0, following.stderr[-3000:]
    bookmark = dt.datetime.fromisoformat(saved["bookmarks"]["sessions"]["replication_key_value"])
    assert {json.loads(e["body"])["start"] for e in server.logged("/ekranapi/sessions")} == {
        bookmark.strftime("%Y-%m-%dT%H:%M:%S")}
    ids = {r["sessionId"] for r in following.records("sessions")}
    assert ids == set(app.select(bookmark.timestamp(), None)) - set(saved["bookmarks"]["sessions"]["complete_ids"])
    assert set(changes["new"]) <= ids
