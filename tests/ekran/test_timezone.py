"""tap-ekran and a server whose clock is not UTC: the `timezone` setting reads
its offset-less session times and writes the `start` it sends on that clock."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from tap_ekran.client import utc_iso
from tests.taputil import run_tap

TAP = "tap-ekran"
TOKEN = "sandbox-ekran-api-key"
UTC = dt.timezone.utc
#: the sandbox's clock when it generates its sessions (yesterday at noon UTC: the same sessions whatever the hour);
#: each sync runs "at" a given time on it, passed as end_date, so that no
#: test depends on the wall clock's second
CLOCK = dt.datetime.combine(dt.datetime.now(UTC).date() - dt.timedelta(days=1), dt.time(18), UTC)


def config_for(server, **extra):
    return {
        "api_url": server.url,
        "api_token": TOKEN,
        "start_date": dt.datetime.combine(server.app.first_day, dt.time(), UTC).isoformat(),
        "page_size": 100,
        "lookback_hours": 0,
        "retry_backoff_seconds": 0.01,
        **extra,
    }


def starts(server) -> list[str]:
    return [json.loads(e["body"])["start"] for e in server.logged("/ekranapi/sessions")]


def instant(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text)
    assert value.utcoffset() == dt.timedelta(0), text  # every emitted time is UTC
    return value


def times_of(record) -> tuple[dt.datetime, dt.datetime | None]:
    return instant(record["loginDate"]), instant(record["logoutDate"])


@pytest.mark.parametrize("zone", ["Etc/GMT+5", "Asia/Tokyo"])  # UTC-5 and UTC+9, fixed offsets
def test_a_server_clock_off_utc_loses_and_doubles_no_session(sandbox_factory, zone):
    server = sandbox_factory("ekran", scale=600, days=3, users=5, clients=4, timezone=zone, now=CLOCK.isoformat())
    app = server.app
    tz = ZoneInfo(zone)
    config = config_for(server, timezone=zone)
    start = dt.datetime.combine(app.first_day, dt.time(), UTC)
    sample = app.session(1)
    assert "+" not in sample["loginDate"][10:] and "Z" not in sample["loginDate"]  # the server writes no offset

    first = run_tap(TAP, {**config, "end_date": (CLOCK + dt.timedelta(seconds=30)).isoformat()})
    assert first.returncode == 0, first.stderr[-3000:]
    # the start sent is start_date on the server's clock
    assert set(starts(server)) == {start.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S")}
    records = {r["sessionId"]: r for r in first.records("sessions")}
    assert len(records) == len(first.records("sessions"))  # once each
    assert set(records) == set(app.select(start.timestamp(), None))
    # every time UTC and the sandbox's true instant (none crosses start_date: none clipped)
    assert all(times_of(r) == app_times(app, sid) for sid, r in records.items())

    changes = app.advance(now=(CLOCK + dt.timedelta(hours=1)).isoformat())
    server.clear_log()
    second = run_tap(TAP, {**config, "end_date": (CLOCK + dt.timedelta(hours=1, seconds=30)).isoformat()},
                     state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    bookmark = dt.datetime.fromisoformat(first.bookmark("sessions")["replication_key_value"])
    assert starts(server) and set(starts(server)) == {bookmark.astimezone(tz).strftime("%Y-%m-%dT%H:%M:%S")}
    again = {r["sessionId"]: r for r in second.records("sessions")}
    assert len(again) == len(second.records("sessions"))
    complete = set(first.bookmark("sessions")["complete_ids"])
    # what the server selects from the bookmark on, less the sessions already loaded whole
    assert set(again) == set(app.select(bookmark.timestamp(), None)) - complete
    assert not complete & set(again)
    assert set(changes["new"]) <= set(again) and set(changes["closed"]) <= set(again)
    # nothing lost: every session the server has since start_date is in the warehouse
    final = records | again
    assert set(final) == set(app.select(start.timestamp(), None))
    for sid, record in again.items():
        login, logout = times_of(record)
        true_login, true_logout = app_times(app, sid)
        assert logout == true_logout  # no end is sent: no logout is clipped
        assert login == true_login or (login > bookmark > true_login)  # clipped only at the bookmark (note 2)
    # the sessions closed since are whole in the warehouse unless open past the hold
    assert all(final[sid]["logoutDate"] is not None for sid in changes["closed"])


def app_times(app, sid: int) -> tuple[dt.datetime, dt.datetime | None]:
    """A session's true loginDate and logoutDate, as the server's milliseconds give them."""
    login, logout = app.times(sid)

    def at(ts: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(round(ts, 3), UTC)

    return at(login), at(logout) if logout is not None else None


@pytest.mark.parametrize(
    ("text", "zone", "utc"),
    [
        ("2026-01-05T08:00:00.250", "Etc/GMT+5", "2026-01-05T13:00:00.250000+00:00"),
        ("2026-01-05T08:00:00.000", "Asia/Tokyo", "2026-01-04T23:00:00+00:00"),
        ("2026-07-05T08:00:00.000", "America/New_York", "2026-07-05T12:00:00+00:00"),  # EDT
        ("2026-12-05T08:00:00.000", "America/New_York", "2026-12-05T13:00:00+00:00"),  # EST
        ("2026-01-05T08:00:00.000+00:00", "Asia/Tokyo", "2026-01-05T08:00:00.000+00:00"),  # an offset wins
    ],
)
def test_offset_less_times_are_read_on_the_server_clock(text, zone, utc):
    assert utc_iso(text, ZoneInfo(zone)) == utc


def test_an_unknown_timezone_fails_before_any_request(sandbox_factory):
    server = sandbox_factory("ekran", scale=10, days=1)
    run = run_tap(TAP, config_for(server, timezone="Europe/Atlantis"))
    assert run.returncode != 0
    assert "timezone" in run.stderr and "Europe/Atlantis" in run.stderr
    assert server.logged() == []
