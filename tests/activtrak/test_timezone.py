"""tap-activtrak: fields the document does not name land in `extra`; the
`timezone` setting reads the server's naive times (records and requested days)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from tests.taputil import run_tap

TAP = "tap-activtrak"
TOKEN = "sandbox-activtrak-token"
UTC = dt.timezone.utc
STREAMS = ("activity_log", "working_hours_users", "working_hours_computers")
#: the server's today in the tests of a zone off UTC: a fixed day, never the wall clock's
SERVER_TODAY = "2026-03-10"


def config_for(server, **extra):
    return {
        "api_url": server.url,
        "api_token": TOKEN,
        "start_date": server.app.first_day.isoformat(),
        "retry_backoff_seconds": 0.01,
        **extra,
    }


def instant(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    assert value.utcoffset() == dt.timedelta(0), text  # every emitted time is UTC
    return value


# ------------------------------------------------------------------ extra
def test_undocumented_fields_land_in_extra_in_every_stream(sandbox_factory):
    server = sandbox_factory("activtrak", scale=300, days=3, users=4, computers=3)
    run = run_tap(TAP, config_for(server))
    assert run.returncode == 0, run.stderr[-2000:]
    app = server.app
    for stream in STREAMS:
        properties = run.schema(stream)["schema"]["properties"]
        assert "object" in properties["extra"]["type"]
        records = run.records(stream)
        assert records and all(set(r) <= set(properties) for r in records)  # nothing undeclared at the top
        with_extra = [r for r in records if r["extra"]]
        assert with_extra and len(with_extra) < len(records)
        assert all(all(key.startswith("undocumented_") for key in r["extra"]) for r in with_extra)
        validator = jsonschema.Draft7Validator(run.schema(stream)["schema"])
        assert all(not list(validator.iter_errors(r)) for r in records)
    entries = {r["logId"]: r for r in run.records("activity_log")}
    assert len(entries) == 300
    for log_id, record in entries.items():
        served = app.activity(log_id - 1)
        unknown = {k: v for k, v in served.items() if k.startswith("undocumented_")}
        assert record["extra"] == unknown
    users = run.records("working_hours_users")
    assert {r["users_key"] for r in users if r["extra"]} == {"user001", "user004"}  # entities 0 and 3
    assert all(r["extra"]["undocumented_location"] in ("office", "remote") for r in users if r["extra"])


def test_a_field_named_like_a_computed_one_or_a_bad_time_is_kept_in_extra(sandbox_factory, monkeypatch):
    server = sandbox_factory("activtrak", scale=20, days=2, users=2, computers=2)
    serve = server.app.working_hours

    def odd(view, day, entity):
        row = serve(view, day, entity)
        row["users_key"] = "sent by the server"
        row["lastActivityLog"] = "not a time"
        return row

    monkeypatch.setattr(server.app, "working_hours", odd)
    run = run_tap(TAP, config_for(server), streams=["working_hours_users"])
    assert run.returncode == 0, run.stderr[-2000:]
    rows = run.records("working_hours_users")
    assert len(rows) == 4
    for row in rows:
        assert row["users_key"] == row["users"][0]  # the tap's own key
        assert row["extra"]["users_key"] == "sent by the server"
        assert row["lastActivityLog"] is None and row["extra"]["lastActivityLog"] == "not a time"


# ------------------------------------------------------------------ time zones
@pytest.mark.parametrize("zone", ["Etc/GMT+5", "Asia/Tokyo"])  # UTC-5 and UTC+9, fixed offsets
def test_a_server_clock_off_utc_loses_and_doubles_nothing(sandbox_factory, zone):
    # the server's days are fixed (its today: SERVER_TODAY) and every sync ends
    # where that day ends on its clock (end_date), so the test reads the same
    # days whenever it runs, even across the server's midnight
    server = sandbox_factory("activtrak", scale=1500, days=4, users=3, computers=2, timezone=zone,
                             today=SERVER_TODAY)
    app = server.app
    tz = ZoneInfo(zone)
    end = app.day_instant(app.today + dt.timedelta(days=1))
    config = config_for(server, timezone=zone, end_date=end.isoformat())
    first = run_tap(TAP, config)
    assert first.returncode == 0, first.stderr[-2000:]

    # records: every time UTC and the sandbox's true instant
    entries = first.records("activity_log")
    assert sorted(r["logId"] for r in entries) == list(range(1, 1501))
    assert all(instant(r["date"]) == app.instant(r["logId"] - 1) for r in entries)
    days = [app.first_day + dt.timedelta(days=i) for i in range(app.days)]
    for stream, count in (("working_hours_users", 3), ("working_hours_computers", 2)):
        rows = first.records(stream)
        assert len(rows) == app.days * count
        assert sorted({instant(r["date"]) for r in rows}) == [app.day_instant(day) for day in days]
        for row in rows:
            day = instant(row["date"]).astimezone(tz).date()
            entity = (row["users_key"] if stream == "working_hours_users" else row["computers_key"])[-3:]
            served = app.working_hours(stream.rsplit("_", 1)[1], day, int(entity) - 1)
            assert served["firstActivity"][-6:] != "+00:00" and "+" not in served["firstActivity"]  # naive
            local = dt.datetime.fromisoformat(served["firstActivity"]).replace(tzinfo=tz)
            assert instant(row["firstActivity"]) == local
            assert instant(row["lastActivity"]) == dt.datetime.fromisoformat(served["lastActivity"]).replace(tzinfo=tz)

    # requests: the server's days. start_date is midnight UTC on first_day:
    # the server's first_day - 1 at UTC-5 (19:00 the evening before), first_day at UTC+9
    start_day = dt.datetime.combine(app.first_day, dt.time(), UTC).astimezone(tz).date()
    assert start_day == app.first_day - dt.timedelta(days=1 if zone == "Etc/GMT+5" else 0)
    assert server.logged("activitylog")[0]["params"]["startDate"] == start_day.isoformat()
    windows = [r["params"]["from"] for r in server.logged("workinghours/users")]
    assert windows[0] == start_day.isoformat() and windows[-1] == app.today.isoformat()

    # time passes; the next sync reads the server's last two days again, and
    # only new or late entries
    # (at noon of the server's today)
    noon = app.day_instant(app.today) + dt.timedelta(hours=12)
    change = app.advance(new=6, late=3, late_days_ago=1, grow_today=300, now=noon.isoformat())
    server.clear_log()
    second = run_tap(TAP, config, state=first.state)
    assert second.returncode == 0, second.stderr[-2000:]
    new = second.records("activity_log")
    assert [r["logId"] for r in new] == list(range(change["first_log_id"], change["first_log_id"] + 9))
    assert all(instant(r["date"]) == app.instant(r["logId"] - 1) for r in new)
    windows = sorted({(r["params"]["from"], r["params"]["to"]) for r in server.logged("workinghours/users")})
    yesterday = app.today - dt.timedelta(days=1)
    assert windows == [(yesterday.isoformat(), yesterday.isoformat()), (app.today.isoformat(), app.today.isoformat())]
    again = second.records("working_hours_users")
    assert len(again) == 2 * 3
    assert {instant(r["date"]) for r in again} == {app.day_instant(yesterday), app.day_instant(app.today)}
    # the warehouse: one row per (day, entity), none shifted by the zone
    keys = {(r["date"], r["computerid"], r["users_key"]) for r in first.records("working_hours_users") + again}
    assert len(keys) == app.days * 3


def test_a_dst_zone_converts_each_time_at_its_own_offset(sandbox_factory):
    # America/New_York leaves daylight saving time on 2026-11-01 (02:00 EDT -> 01:00 EST)
    server = sandbox_factory("activtrak", scale=500, days=5, users=2, computers=1,
                             today="2026-11-03", timezone="America/New_York")
    app = server.app
    run = run_tap(TAP, config_for(server, timezone="America/New_York"),
                  streams=["activity_log", "working_hours_users"])
    assert run.returncode == 0, run.stderr[-2000:]
    offsets = {day: app.day_instant(day).hour for day in (dt.date(2026, 10, 31), dt.date(2026, 11, 2))}
    assert offsets == {dt.date(2026, 10, 31): 4, dt.date(2026, 11, 2): 5}
    dates = sorted({instant(r["date"]) for r in run.records("working_hours_users")})
    assert dates == [app.day_instant(app.first_day + dt.timedelta(days=i)) for i in range(5)]
    entries = run.records("activity_log")
    assert len(entries) == 500
    # a naive time in the repeated hour (01:00-02:00 on 2026-11-01) names two
    # instants: the tap takes the first (EDT); every other time is exact
    repeated = [r for r in entries if app.activity(r["logId"] - 1)["date"].startswith("2026-11-01T01:")]
    exact = [r for r in entries if r not in repeated]
    assert repeated and all(instant(r["date"]) == app.instant(r["logId"] - 1) for r in exact)
    assert all(app.instant(r["logId"] - 1) - instant(r["date"]) in (dt.timedelta(0), dt.timedelta(hours=1))
               for r in repeated)


def test_an_unknown_timezone_fails_before_any_request(sandbox_factory):
    server = sandbox_factory("activtrak", scale=10, days=1)
    run = run_tap(TAP, config_for(server, timezone="Mars/Olympus_Mons"))
    assert run.returncode != 0
    assert "timezone" in run.stderr and "Mars/Olympus_Mons" in run.stderr
    assert server.logged() == []
