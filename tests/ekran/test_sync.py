"""tap-ekran against the Ekran sandbox: the range and its pages, records, state."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.taputil import discover, run_tap, run_tap_until

TAP = "tap-ekran"
TOKEN = "sandbox-ekran-api-key"
UTC = dt.timezone.utc
DAY = 86400.0
#: the sandbox's clock when it generates its sessions, in the tests of several
#: syncs: yesterday at 18:00 UTC (the same sessions whatever the hour; some
#: open for more than the 24-hour hold). Each of their syncs runs "at" a given
#: time on that clock, passed as end_date (the period ends at min(end_date,
#: now)), so no test depends on the wall clock's second.
CLOCK = dt.datetime.combine(dt.datetime.now(UTC).date() - dt.timedelta(days=1), dt.time(18), UTC)


def at(minutes: float) -> dt.datetime:
    """``minutes`` after CLOCK."""
    return CLOCK + dt.timedelta(minutes=minutes)


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), UTC)


def config_for(server, **extra):
    return {
        "api_url": server.url + "/",  # a trailing slash is tolerated
        "api_token": TOKEN,
        "start_date": midnight(server.app.first_day).isoformat(),
        "page_size": 100,
        "lookback_hours": 0,
        "retry_backoff_seconds": 0.01,
        **extra,
    }


def session_ids(records):
    return [r["sessionId"] for r in records]


def requested(server):
    """(start, end or None, sessionCount, pageIndex) of every sessions request, in order."""
    bodies = [json.loads(e["body"]) for e in server.logged("/ekranapi/sessions")]
    return [(b["start"], b.get("end"), b["sessionCount"], b["pageIndex"]) for b in bodies]


def whole(server, sid: int) -> tuple[dt.datetime, dt.datetime | None]:
    """A session's real loginDate and logoutDate (not clipped by any request)."""
    login, logout = server.app.times(sid)
    return (dt.datetime.fromtimestamp(login, UTC),
            dt.datetime.fromtimestamp(logout, UTC) if logout is not None else None)


def times_of(record) -> tuple[dt.datetime, dt.datetime | None]:
    logout = record["logoutDate"]
    return dt.datetime.fromisoformat(record["loginDate"]), dt.datetime.fromisoformat(logout) if logout else None


def ts(text: str) -> float:
    value = dt.datetime.fromisoformat(text)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


@pytest.fixture
def ekran(sandbox_factory):
    # 1,500 sessions over 4 days: 15 pages of 100
    return sandbox_factory("ekran", scale=1500, days=4, users=9, clients=6)


def test_every_session_arrives_once_and_whole_across_pages(ekran):
    run = run_tap(TAP, config_for(ekran))
    assert run.returncode == 0, run.stderr[-3000:]
    app = ekran.app
    ids = session_ids(run.records("sessions"))
    assert sorted(ids) == list(range(1, 1501))  # every session, once

    # one range from start_date, without an end: "all sessions that were
    # started or finished after the start date/time" (the document's note 1)
    pages = requested(ekran)
    first = midnight(app.first_day)
    assert {(start, end) for start, end, _, _ in pages} == {(first.strftime("%Y-%m-%dT%H:%M:%S"), None)}
    assert [p for _, _, _, p in pages] == list(range(15))  # pageIndex from 0, 100 per page
    assert all(count == 100 for _, _, count, _ in pages)
    assert all(e["auth"] and e["method"] == "POST" for e in ekran.logged())

    # no session crosses the range's edges, so none is clipped (notes 2 and 3):
    # each comes whole, the ones that cross midnight too
    for record in run.records("sessions"):
        assert times_of(record) == whole(ekran, record["sessionId"])
    assert any(r["logoutDate"] and r["loginDate"][:10] != r["logoutDate"][:10] for r in run.records("sessions"))
    state = run.bookmark("sessions")
    assert "resume" not in state and isinstance(state["complete_ids"], list)


def test_sends_at_most_1000_sessions_per_request_by_default(sandbox_factory):
    server = sandbox_factory("ekran", scale=2300, days=1)
    run = run_tap(TAP, config_for(server, page_size=1000))
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(set(session_ids(run.records("sessions")))) == 2300
    assert [(count, page) for _, _, count, page in requested(server)] == [(1000, 0), (1000, 1), (1000, 2)]


def test_records_are_typed_utc_with_seconds_and_extra(sandbox_factory):
    # the server writes its times at UTC+02:00; the tap emits UTC
    server = sandbox_factory("ekran", scale=400, days=2, utc_offset_minutes=120)
    run = run_tap(TAP, config_for(server))
    assert run.returncode == 0, run.stderr[-3000:]
    records = {r["sessionId"]: r for r in run.records("sessions")}
    app = server.app
    closed = next(sid for sid in records if records[sid]["logoutDate"])
    record = records[closed]
    login, logout = app.times(closed)
    assert record["loginDate"].endswith("+00:00") and record["logoutDate"].endswith("+00:00")
    assert dt.datetime.fromisoformat(record["loginDate"]) == dt.datetime.fromtimestamp(login, UTC)
    assert dt.datetime.fromisoformat(record["logoutDate"]) == dt.datetime.fromtimestamp(logout, UTC)
    assert app.session(closed)["loginDate"].endswith("+02:00")
    assert isinstance(record["userId"], int) and isinstance(record["sessionId"], int)
    assert record["durationSeconds"] == pytest.approx(logout - login, abs=0.001)
    assert record["idleTimeSeconds"] + record["productivityTimeSeconds"] == pytest.approx(logout - login, abs=0.002)
    assert record["duration"] == app.session(closed)["duration"]  # the raw string is kept
    served = app.session(closed)
    assert record["extra"] == {k: v for k, v in served.items() if k == "domainName" or k.startswith("undocumented_")}
    # some sessions carry more fields the document does not name: all in extra, none at the top
    with_more = [r for r in records.values() if "undocumented_recording" in r["extra"]]
    assert with_more and len(with_more) < len(records)
    for r in with_more:
        assert r["extra"]["undocumented_recording"] == app.session(r["sessionId"])["undocumented_recording"]
    assert all(set(r) <= set(run.schema("sessions")["schema"]["properties"]) for r in records.values())

    schema = run.schema("sessions")
    properties = schema["schema"]["properties"]
    assert schema["key_properties"] == ["sessionId"]
    assert properties["loginDate"]["format"] == properties["logoutDate"]["format"] == "date-time"
    assert "number" in properties["durationSeconds"]["type"]
    assert set(properties) >= {
        "sessionId", "userId", "userName", "clientGuid", "clientName", "loginDate", "logoutDate",
        "duration", "idleTime", "productivityTime", "extra",
    }
    assert set(records[closed]) <= set(properties)


def test_impossible_durations_are_kept_raw_with_null_seconds(ekran):
    run = run_tap(TAP, config_for(ekran))
    assert run.returncode == 0, run.stderr[-3000:]
    records = {r["sessionId"]: r for r in run.records("sessions")}
    bad = ekran.app.bad_ids()
    assert len(bad) >= 3
    for sid in bad:
        record = records[sid]
        assert int(record["productivityTime"].split(":")[2][:2]) >= 60  # e.g. 11:22:66.6540000
        assert record["productivityTimeSeconds"] is None
        assert record["durationSeconds"] is not None
    assert "productivityTime" in run.stderr and "productivityTimeSeconds is null" in run.stderr
    # one-digit hours, as in the document's own sample, are valid
    one_digit = [r for r in records.values() if r["duration"][1] == ":"]
    assert one_digit and all(r["durationSeconds"] is not None for r in one_digit)


def test_a_session_open_at_the_first_sync_arrives_closed_in_the_second(sandbox_factory):
    server = sandbox_factory("ekran", scale=600, days=2, now=CLOCK.isoformat())
    app = server.app
    config = config_for(server)
    end = at(0.5)  # the first sync runs half a minute after the sessions were generated
    first = run_tap(TAP, {**config, "end_date": end.isoformat()})
    assert first.returncode == 0, first.stderr[-3000:]
    open_logins = {r["sessionId"]: dt.datetime.fromisoformat(r["loginDate"])
                   for r in first.records("sessions") if r["logoutDate"] is None}
    assert open_logins

    # the bookmark holds at the oldest session still open that logged in
    # within open_session_hold_hours (24) of the end of the sync
    oldest_holding = min(login for login in open_logins.values() if login >= end - dt.timedelta(hours=24))
    bookmark = dt.datetime.fromisoformat(first.bookmark("sessions")["replication_key_value"])
    assert bookmark == oldest_holding.replace(microsecond=0)

    changes = app.advance(now=at(60).isoformat())
    closed = set(changes["closed"])
    assert closed and closed <= set(open_logins)
    second = run_tap(TAP, {**config, "end_date": at(60.5).isoformat()}, state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    records = {r["sessionId"]: r for r in second.records("sessions")}
    held = {sid for sid in closed if open_logins[sid] >= bookmark}
    assert held and closed - held  # some logged in within the hold, some before it
    for sid in closed:
        logout = dt.datetime.fromisoformat(records[sid]["logoutDate"])
        assert logout == dt.datetime.fromtimestamp(app.times(sid)[1], UTC)
        if sid in held:  # read again from the bookmark: whole
            assert records[sid]["durationSeconds"] == pytest.approx(app.times(sid)[1] - app.times(sid)[0], abs=0.001)
            assert times_of(records[sid]) == whole(server, sid)
        else:  # open for longer than the hold: the API clips it at the start (note 2)
            assert dt.datetime.fromisoformat(records[sid]["loginDate"]) > bookmark > open_logins[sid]
    assert set(changes["new"]) <= set(records)
    # what the API selects from the bookmark on, less the sessions the first
    # sync emitted whole that cross the bookmark (they would come clipped)
    complete = set(first.bookmark("sessions")["complete_ids"])
    assert complete and complete <= set(session_ids(first.records("sessions")))
    assert set(records) == set(app.select(bookmark.timestamp(), None)) - complete
    assert len(records) < len(set(session_ids(first.records("sessions"))))
    # so every session in the warehouse (the last copy of each) is whole, but
    # for those open longer than the hold
    final = {r["sessionId"]: r for r in first.records("sessions")} | records
    assert {sid for sid, r in final.items() if times_of(r) != whole(server, sid)} == closed - held


def test_without_the_hold_a_closed_session_still_arrives_by_its_logout(sandbox_factory):
    # open_session_hold_hours=0: the bookmark goes to the end of the sync; the
    # document's "finished after start" brings a session back once it closes
    server = sandbox_factory("ekran", scale=600, days=2, now=CLOCK.isoformat())
    config = config_for(server, open_session_hold_hours=0)
    first = run_tap(TAP, {**config, "end_date": at(0.5).isoformat()})
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.bookmark("sessions")["replication_key_value"] == at(0.5).isoformat()
    closed = set(server.app.advance(new_open=0, new_closed=0, late=0, now=at(60).isoformat())["closed"])
    second = run_tap(TAP, {**config, "end_date": at(60.5).isoformat()}, state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    records = {r["sessionId"]: r for r in second.records("sessions")}
    assert closed and set(records) == closed
    assert all(records[sid]["logoutDate"] for sid in closed)


def test_open_session_hold_is_capped(sandbox_factory):
    # sessions 499 and 998 never report a logout; 499 logged in days ago
    server = sandbox_factory("ekran", scale=1000, days=4)
    app = server.app
    stale_login = dt.datetime.fromtimestamp(app.times(499)[0], UTC)
    assert app.times(499)[1] is None
    assert dt.datetime.now(UTC) - stale_login > dt.timedelta(hours=30)

    capped = run_tap(TAP, config_for(server))  # default: 24 hours
    assert capped.returncode == 0, capped.stderr[-3000:]
    bookmark = dt.datetime.fromisoformat(capped.bookmark("sessions")["replication_key_value"])
    assert bookmark > stale_login + dt.timedelta(hours=6)

    long_hold = run_tap(TAP, config_for(server, open_session_hold_hours=24 * 5))
    assert long_hold.returncode == 0, long_hold.stderr[-3000:]
    assert long_hold.bookmark("sessions")["replication_key_value"] == stale_login.replace(microsecond=0).isoformat()


def test_lookback_rereads_hours_before_the_bookmark(ekran):
    bookmark = dt.datetime.now(UTC).replace(microsecond=0) - dt.timedelta(hours=5)
    state = {"bookmarks": {"sessions": {"replication_key": "loginDate", "replication_key_value": bookmark.isoformat()}}}
    run = run_tap(TAP, config_for(ekran, lookback_hours=2, open_session_hold_hours=0), state=state)
    assert run.returncode == 0, run.stderr[-3000:]
    first_start = requested(ekran)[0][0]
    assert ts(first_start) == (bookmark - dt.timedelta(hours=2)).timestamp()
    assert set(session_ids(run.records("sessions"))) == set(
        ekran.app.select((bookmark - dt.timedelta(hours=2)).timestamp(), None))


def test_end_date_bounds_the_period_and_sessions_across_it_come_whole(ekran):
    start = midnight(ekran.app.first_day)
    end = start + dt.timedelta(days=1, hours=12)
    run = run_tap(TAP, config_for(ekran, end_date=end.isoformat()))
    assert run.returncode == 0, run.stderr[-3000:]
    # no `end` is sent (the API would clip the sessions across it, note 3):
    # the tap drops the sessions that logged in at or after end_date
    assert {e for _, e, _, _ in requested(ekran)} == {None}
    app = ekran.app
    wanted = {sid for sid in app.select(start.timestamp(), None) if app.times(sid)[0] < end.timestamp()}
    records = {r["sessionId"]: r for r in run.records("sessions")}
    assert set(records) == wanted
    across = {sid for sid in wanted if (app.times(sid)[1] or 0) > end.timestamp()}
    assert across and all(times_of(records[sid]) == whole(ekran, sid) for sid in across)
    assert run.bookmark("sessions")["replication_key_value"] <= end.isoformat()

    # the next sync, without end_date, leaves every session whole
    after = run_tap(TAP, config_for(ekran), state=run.state)
    assert after.returncode == 0, after.stderr[-3000:]
    final = records | {r["sessionId"]: r for r in after.records("sessions")}
    assert sorted(final) == list(range(1, 1501))
    held = dt.datetime.fromisoformat(run.bookmark("sessions")["replication_key_value"])
    clipped = {sid for sid, r in final.items() if times_of(r) != whole(ekran, sid)}
    # only sessions open for longer than the hold at the backfill's end can be clipped
    assert all(whole(ekran, sid)[0] < held - dt.timedelta(hours=24) for sid in clipped)


def test_state_moves_per_page_and_an_interrupted_sync_resumes(ekran):
    config = config_for(ekran, open_session_hold_hours=0)
    killed = run_tap_until(TAP, config, records_before_kill=750)
    assert killed.returncode != 0
    states = killed.states()
    assert states, "no STATE was written before the kill"
    resume = states[-1]["bookmarks"]["sessions"]["resume"]
    start = midnight(ekran.app.first_day)
    assert dt.datetime.fromisoformat(resume["start"]) == start
    # written after complete pages only: the pages before it were all emitted
    done = set(session_ids(killed.records("sessions")))
    assert 1 <= resume["page_index"] <= len(done) // 100
    assert set(range(1, resume["page_index"] * 100 + 1)) <= done

    ekran.clear_log()
    resumed = run_tap(TAP, config, state=states[-1])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    pages = requested(ekran)
    assert pages[0] == (start.strftime("%Y-%m-%dT%H:%M:%S"), None, 100, resume["page_index"])
    again = session_ids(resumed.records("sessions"))
    assert done | set(again) == set(range(1, 1501))  # nothing lost
    assert again == list(range(resume["page_index"] * 100 + 1, 1501))  # only what was not written
    # what the pages before the kill held is not known to the resumed sync:
    # it leaves the bookmark as it found it (none), so the next sync reads again
    state = resumed.bookmark("sessions")
    assert "resume" not in state and "replication_key_value" not in state
    before = dt.datetime.now(UTC).replace(microsecond=0)
    again = run_tap(TAP, config, state=resumed.state)
    after = dt.datetime.now(UTC)
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(session_ids(again.records("sessions"))) == list(range(1, 1501))
    # no session held open (hold 0): the bookmark is the sync's end, its clock's second
    assert before <= dt.datetime.fromisoformat(again.bookmark("sessions")["replication_key_value"]) <= after


def test_an_empty_period_makes_no_request(ekran):
    future = (dt.datetime.now(UTC) + dt.timedelta(days=2)).isoformat()
    state = {"bookmarks": {"sessions": {"replication_key": "loginDate", "replication_key_value": future}}}
    run = run_tap(TAP, config_for(ekran), state=state)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.records("sessions") == [] and ekran.logged() == []
    assert run.bookmark("sessions")["replication_key_value"] == future


def test_a_custom_path_is_used(sandbox_factory):
    server = sandbox_factory("ekran", scale=50, days=1)
    run = run_tap(TAP, config_for(server, paths={"sessions": "ekranapi/sessions/"}))
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(set(session_ids(run.records("sessions")))) == 50
    assert {e["path"] for e in server.logged()} == {"/ekranapi/sessions/"}


def test_a_short_page_short_of_total_count_is_reported(sandbox_factory, monkeypatch):
    # a server that caps sessionCount lower than asked: the range ends at
    # the short page, as the API's paging implies, and the tap says so
    server = sandbox_factory("ekran", scale=300, days=1)
    app = server.app
    original = app.handle

    def capped(request):
        body = json.loads(request.body)
        request.body = json.dumps({**body, "sessionCount": min(body["sessionCount"], 60)}).encode()
        response = original(request)
        payload = json.loads(response.body)
        payload["totalCount"] = len(app.select(ts(body["start"]), None))
        response.body = json.dumps(payload).encode()
        return response

    monkeypatch.setattr(app, "handle", capped)
    run = run_tap(TAP, config_for(server))
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(run.records("sessions")) == 60
    assert "fewer than sessionCount=100, though totalCount=300 promised 240 more" in run.stderr


def test_sessions_emitted_whole_are_never_replaced_by_clipped_copies(sandbox_factory):
    # A sync starts before its bookmark (the lookback) and the bookmark holds
    # at the oldest open session, so sessions the last sync read whole cross
    # the new start and the API would answer them clipped (note 2). Over three
    # syncs, the last copy of every session is whole.
    server = sandbox_factory("ekran", scale=600, days=2, now=CLOCK.isoformat())
    config = config_for(server, lookback_hours=1, open_session_hold_hours=24 * 5)  # every open session holds
    final: dict[int, dict] = {}
    state = None
    skipped = []
    for sync in range(3):
        if sync:
            server.app.advance(now=at(60 * sync).isoformat())
            server.clear_log()
        run = run_tap(TAP, {**config, "end_date": at(60 * sync + 0.5).isoformat()}, state=state)
        assert run.returncode == 0, run.stderr[-3000:]
        emitted = {r["sessionId"]: r for r in run.records("sessions")}
        if state is not None:
            start = requested(server)[0][0]
            crossing = {sid for sid in server.app.select(ts(start), None) if server.app.times(sid)[0] < ts(start)}
            skipped.append(crossing - set(emitted))
            assert crossing - set(emitted) <= set(state["bookmarks"]["sessions"]["complete_ids"])
        final.update(emitted)
        state = run.state
    assert all(skipped)  # each later sync had whole sessions to skip
    assert sorted(final) == list(range(1, server.app.total + 1))
    assert all(times_of(r) == whole(server, sid) for sid, r in final.items())


def test_odd_values_never_fail_the_sync(sandbox_factory, monkeypatch):
    from tests.sandbox.core import Response

    server = sandbox_factory("ekran", scale=10, days=1)
    login = (dt.datetime.now(UTC) - dt.timedelta(hours=3)).replace(microsecond=0)
    rows = [
        {"sessionId": 1, "loginDate": login.isoformat(), "logoutDate": "0001-01-01T00:00:00",  # .NET "not set"
         "duration": "11:22:66.6540000", "idleTime": "", "productivityTime": None},
        {"sessionId": 2, "loginDate": "yesterday", "logoutDate": None, "duration": 42, "userId": 3},
    ]
    monkeypatch.setattr(server.app, "handle", lambda request: Response.json({"sessions": rows, "totalCount": 2}))
    run = run_tap(TAP, config_for(server))
    assert run.returncode == 0, run.stderr[-3000:]
    first, second = sorted(run.records("sessions"), key=lambda r: r["sessionId"])[:2]
    assert first["logoutDate"] is None  # open
    assert first["duration"] == "11:22:66.6540000" and first["durationSeconds"] is None
    assert first["idleTimeSeconds"] is None and first["productivityTimeSeconds"] is None
    assert second["loginDate"] is None and second["extra"] == {"loginDateRaw": "yesterday"}
    assert second["duration"] == "42" and second["durationSeconds"] is None
    # the open session (MinValue logout) holds the bookmark at its login
    assert run.bookmark("sessions")["replication_key_value"] == login.isoformat()


def test_without_start_date_the_first_sync_starts_30_days_ago_at_midnight(sandbox_factory):
    server = sandbox_factory("ekran", scale=200, days=40)
    config = config_for(server)
    del config["start_date"]
    before = dt.datetime.now(UTC).date()
    run = run_tap(TAP, config)
    after = dt.datetime.now(UTC).date()
    assert run.returncode == 0, run.stderr[-3000:]
    # the tap's today: `before`, or `after` when midnight UTC fell during the run
    starts = {midnight(day - dt.timedelta(days=30)).timestamp() for day in (before, after)}
    start = ts(requested(server)[0][0])
    assert start in starts
    assert len(set(session_ids(run.records("sessions")))) == len(server.app.select(start, None)) < 200


def test_deselected_properties_are_left_out_of_records(ekran):
    catalog = discover(TAP, config_for(ekran))
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if meta["breadcrumb"] == ["properties", "idleTime"]:
                meta["metadata"]["selected"] = False
    run = run_tap(TAP, config_for(ekran), catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    records = run.records("sessions")
    assert records and all("idleTime" not in r and "duration" in r for r in records)
