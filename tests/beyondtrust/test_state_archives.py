"""tap-beyondtrust: state archives (Archive&type=state), one stream per table, as
snapshots (state_archives: latest) whose ACTIVATE_VERSION lets a target mark
rows gone from the newest snapshot deleted, or as history (daily, all) that a
killed sync resumes at the archive it was in."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from tests.beyondtrust.test_sync import TAP, config_for, keys, known_extra, ok
from tests.sandbox.beyondtrust import ARCHIVE_TABLES
from tests.taputil import run_tap, run_tap_until

DOCUMENTED = [t for t in ARCHIVE_TABLES if t != "representative_status"]
STATE_STREAMS = ["state_archives", *(f"state_{t}" for t in DOCUMENTED), "state_other_tables"]


def state_config(server, **extra):
    first_day = dt.datetime.fromtimestamp(server.app.state_slots[0], dt.timezone.utc).date()
    return config_for(server, start_date=first_day.isoformat(), **extra)


def messages(run, kind, stream=None):
    return [m for m in run.messages if m["type"] == kind and (stream is None or m["stream"] == stream)]


def slot_key(slot):
    day = dt.datetime.fromtimestamp(slot, dt.timezone.utc).date()
    lo = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp())
    return f"{day.isoformat()}/{(slot - lo) // 1800 + 1:05d}"


def downloads(server):
    return [(c["params"]["date"], int(c["params"]["index"])) for c in server.logged("/api/reporting")
            if c["params"].get("generate_report") == "Archive" and c["params"].get("type") == "state"]


@pytest.fixture
def st(sandbox_factory):
    return sandbox_factory("beyondtrust", scale=30, days=2, archive_count=12, archive_events=10, state_rows=20)


def test_latest_state_archive_is_a_typed_snapshot_with_activate_version(st):
    app = st.app
    assert len(app.state_slots) >= 3
    run = ok(run_tap(TAP, state_config(st, emit_activate_version_messages=True), streams=STATE_STREAMS))
    newest = slot_key(app.state_slots[-1])
    assert [f"{d}/{i:05d}" for d, i in downloads(st)] == [newest], "only the newest state archive"
    expected = app.info()["expected_counts"]
    for stream in STATE_STREAMS:
        found = keys(run, stream)
        assert len(found) == len(set(found)) == expected[stream], stream
    assert expected["state_queue"] == 20 and expected["state_support_session_skill"] == 0

    (archive,) = run.records("state_archives")
    assert archive["archive_key"] == newest and archive["tables"]["support_session_skill"] is None
    assert archive["tables"]["queue"] == 20 and archive["rows"] == 20 * 8 + 3
    assert archive["extra"] == {"undocumented_size": str(archive["archive_index"] * 1000)}
    reps = run.records("state_representative")
    assert run.schema("state_representative")["key_properties"] == ["row_key"]
    for r in reps:
        n = r["id"]
        assert r["row_key"] == str(n)
        assert (r["archive_date"], r["archive_index"]) == (archive["archive_date"], archive["archive_index"])
        assert r["archive_time"] == archive["time"]
        assert r["connected"] is bool(n % 2) and r["routing_idle"] is bool(n % 2)
        assert r["created_timestamp"] == dt.datetime.fromtimestamp(
            app.state_slots[-1] - 60 * n, dt.timezone.utc).isoformat()
        assert r["queue_id"] == n % 7 + 1 and r["username"] == f"username-{n}"
        assert (r["extra"] or {}).get("undocumented_shard") == (f"s{n % 3}" if n % 4 == 1 else None)
        assert known_extra(r["extra"]) is None
    other = run.records("state_other_tables")
    assert {r["table"] for r in other} == {"representative_status"} and other[0]["extra"]["status"]

    # every state_* stream, rows or not, is activated once its snapshot is whole, with its records' version
    for stream in STATE_STREAMS[1:]:
        (activate,) = messages(run, "ACTIVATE_VERSION", stream)
        versions = {m.get("version") for m in messages(run, "RECORD", stream)}
        assert versions <= {activate["version"]}
        last_record = max((i for i, m in enumerate(run.messages) if m["type"] == "RECORD" and m["stream"] == stream),
                          default=-1)
        assert run.messages.index(activate) > last_record, "activated after its last record"

    # a new snapshot without two queue rows: read whole, with a newer version
    app.advance(state_archive=True, retire_state_rows={"queue": [2, 5]})
    st.clear_log()
    again = ok(run_tap(TAP, state_config(st, emit_activate_version_messages=True), streams=STATE_STREAMS))
    assert [f"{d}/{i:05d}" for d, i in downloads(st)] == [slot_key(app.state_slots[-1])]
    assert sorted(r["id"] for r in again.records("state_queue")) == [i for i in range(1, 21) if i not in (2, 5)]
    (later,) = messages(again, "ACTIVATE_VERSION", "state_queue")
    (earlier,) = messages(run, "ACTIVATE_VERSION", "state_queue")
    assert later["version"] > earlier["version"]


def test_no_activate_version_unless_asked_and_none_for_a_broken_snapshot(st):
    run = ok(run_tap(TAP, state_config(st), streams=STATE_STREAMS))
    assert messages(run, "ACTIVATE_VERSION") == []
    st.add_fault("reset", path="/api/reporting", skip=1, times=10)  # every download breaks off
    broken = run_tap(TAP, state_config(st, emit_activate_version_messages=True, max_retries=2),
                     streams=STATE_STREAMS[1:])
    assert broken.returncode != 0 and "broke off" in broken.stderr
    assert messages(broken, "ACTIVATE_VERSION") == [], "a snapshot read in part deletes nothing"


def test_all_state_archives_are_history_and_a_killed_sync_resumes_at_its_archive(sandbox_factory):
    server = sandbox_factory("beyondtrust", scale=30, days=2, archive_count=12, archive_events=10,
                             state_rows=150)
    app = server.app
    per_archive = 150 * 2 + 3 + 1  # the selected streams' records of one archive
    slots = app.state_slots
    assert len(slots) >= 3
    config = state_config(server, state_archives="all")
    streams = ["state_archives", "state_queue", "state_support_session", "state_other_tables"]
    killed = run_tap_until(TAP, config, records_before_kill=int(per_archive * 1.5), streams=streams)
    assert killed.states(), "a STATE message after the first archive"
    state = killed.states()[-1]
    assert state["bookmarks"]["state_archives"]["replication_key_value"] == slot_key(slots[0])
    assert downloads(server)[:2] == [(slot_key(s)[:10], int(slot_key(s)[11:])) for s in slots[:2]]

    server.clear_log()
    resumed = ok(run_tap(TAP, config, state=state, streams=streams))
    assert [f"{d}/{i:05d}" for d, i in downloads(server)] == [slot_key(s) for s in slots[1:]], \
        "resumed at the archive it was in"
    assert resumed.schema("state_queue")["key_properties"] == ["archive_date", "archive_index", "row_key"]
    total = set(keys(killed, "state_queue")) | set(keys(resumed, "state_queue"))
    assert len(total) == 150 * len(slots), "every row of every archive, once by key"
    assert [r["archive_key"] for r in resumed.records("state_archives")] == [slot_key(s) for s in slots[1:]]
    assert resumed.bookmark("state_archives")["replication_key_value"] == slot_key(slots[-1])
    assert messages(resumed, "ACTIVATE_VERSION") == [], "history is never deactivated"

    server.clear_log()
    again = ok(run_tap(TAP, config, state=resumed.state, streams=streams))
    assert downloads(server) == [] and again.counts().get("state_queue", 0) == 0
    app.advance(state_archive=True)
    server.clear_log()
    ok(run_tap(TAP, config, state=resumed.state, streams=streams))
    assert [f"{d}/{i:05d}" for d, i in downloads(server)] == [slot_key(app.state_slots[-1])]


def test_daily_state_archives_are_the_last_of_each_day_before_today(sandbox_factory):
    # event archives over the last ~33 hours: state archives on yesterday and today (the
    # sandbox's clock at least 06:00 UTC: just after midnight none would be on today yet)
    now = time.time()
    before = dt.datetime.fromtimestamp(now, dt.timezone.utc).date()
    server = sandbox_factory("beyondtrust", scale=30, days=3, archive_count=200, archive_events=2, state_rows=3,
                             now=max(now, now // 86400 * 86400 + 6 * 3600))
    app = server.app
    by_day: dict[str, str] = {}
    for slot in app.state_slots:
        key = slot_key(slot)
        by_day[key[:10]] = max(by_day.get(key[:10], ""), key)

    def last_of_each_day_before(today: dt.date) -> list[str]:
        return [key for day, key in sorted(by_day.items()) if day < today.isoformat()]

    run = ok(run_tap(TAP, state_config(server, state_archives="daily"), streams=["state_archives", "state_queue"]))
    after = dt.datetime.now(dt.timezone.utc).date()
    # the tap's today is the day its sync started: `before`, or `after` when midnight UTC
    # fell in between (then the archives of `before` are whole, and read)
    assert before.isoformat() in by_day, "a state archive on the sandbox's today"
    read = [f"{d}/{i:05d}" for d, i in downloads(server)]
    candidates = [last_of_each_day_before(day) for day in sorted({before, after})]
    assert all(candidates)
    assert read in candidates, (read, candidates)
    wanted = read
    assert run.bookmark("state_archives")["replication_key_value"] == wanted[-1]
    assert len(run.records("state_queue")) == 3 * len(wanted)


def test_odd_state_archive_shapes_are_kept_whole():
    """Rows or tables that are not objects, and values not of their documented type."""
    import io

    from tap_beyondtrust.state import state_rows

    body = json.dumps({"queue": {"1": {"name": "a", "created_timestamp": "soon"}, "2": ["x"]}, "queue_x": None,
                       "support_session": [1, 2], "mystery": {"7": {"k": {"deep": [1, {"a": None}]}}}}).encode()
    rows = list(state_rows(io.BytesIO(body), "2024-11-01", 1))
    assert rows == [("queue", "1", {"name": "a", "created_timestamp": "soon"}), ("queue", "2", ["x"]),
                    ("queue_x", None, None), ("support_session", None, [1, 2]),
                    ("mystery", "7", {"k": {"deep": [1, {"a": None}]}})]


def test_a_backfill_reads_no_latest_snapshot(st):
    """state_archives=latest with an end_date before today: a past snapshot must not overwrite
    (or, through ACTIVATE_VERSION, delete) today's rows."""
    yesterday = (dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)).isoformat()
    run = ok(run_tap(TAP, config_for(st, start_date=yesterday, end_date=yesterday,
                                     emit_activate_version_messages=True), streams=STATE_STREAMS))
    assert downloads(st) == [] and messages(run, "RECORD") == []
    assert messages(run, "ACTIVATE_VERSION") == []
    assert "reads no state archive" in run.stderr
