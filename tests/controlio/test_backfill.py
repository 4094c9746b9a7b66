"""tap-controlio: a backfill (README, Backfills) reads its period from
start_date to end_date (inclusive) without state, and the regular state it
does not touch still resumes where it was."""

from __future__ import annotations

import datetime as dt

from tests.controlio.test_sync import config_for, day, keys_of, sync


def test_a_backfill_reads_its_period_and_the_regular_state_resumes_where_it_was(sandbox_factory):
    server = sandbox_factory("controlio", scale=600, days=6, users=4)
    streams = ["logons", "detailed_activities", "workload_by_days"]
    app = server.app
    # the regular runs: a first sync of every day, then time passes
    regular = sync(config_for(server), streams=streams)
    assert regular.returncode == 0, regular.stderr[-2000:]
    assert regular.bookmark("logons")["replication_key_value"] == day(server, 0)

    # the backfill: days 2 and 3 of six, under no state (its own state id in Meltano)
    first, last = app.first_day + dt.timedelta(days=1), app.first_day + dt.timedelta(days=2)
    server.clear_log()
    backfill = sync(config_for(server, start_date=first.isoformat(), end_date=last.isoformat()), streams=streams)
    assert backfill.returncode == 0, backfill.stderr[-2000:]
    assert {r["params"]["start_time"] for r in server.logged()} == {first.isoformat(), last.isoformat()}
    expected = app.expected_counts(start=first, end=last)
    assert backfill.counts() == {stream: expected[stream] for stream in streams}
    assert {r["date"] for r in backfill.records("workload_by_days")} == {first.isoformat(), last.isoformat()}
    # its own state ends at end_date (inclusive) ...
    assert backfill.bookmark("logons")["replication_key_value"] == last.isoformat()
    # ... and the rows it read again are the regular run's rows, by primary key (they upsert)
    assert set(keys_of(backfill, "logons")) <= set(keys_of(regular, "logons"))

    # the next regular run continues from the regular state: yesterday (lookback) and today
    server.clear_log()
    resumed = sync(config_for(server), state=regular.state, streams=streams)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert sorted({r["params"]["start_time"] for r in server.logged()}) == [day(server, -1), day(server, 0)]
    assert resumed.bookmark("logons")["replication_key_value"] == day(server, 0)
