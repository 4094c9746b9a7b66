"""Reports seen not ready are re-checked by id until ready or gone.

The document does not promise that a report's modified_at moves when it
becomes ready, so the tap keeps the ids of the reports it saw not ready in
the reports state and asks for them by id (``filter=id.in(...)``) at every
sync; the sandbox can make a report ready without touching its modified_at.
"""

from __future__ import annotations

import requests

from tests.sandbox.sessionreports import REPORT_ID_BASE
from tests.sessionreports.helpers import TAP, TOKEN, config_for, keys
from tests.taputil import run_tap, run_tap_until

STREAMS = ["reports", "report_rows"]


def index_of(report_id: str) -> int:
    return int(report_id) - REPORT_ID_BASE


def not_ready_in_window(app) -> set[str]:
    cutoff = app._default_cutoff_us()
    return {str(REPORT_ID_BASE + i) for mod, i in app._report_order() if mod >= cutoff and not app.report_ready(i)}


def pending_of(run) -> dict:
    return run.bookmark("reports")["not_ready_reports"]


def test_a_report_that_becomes_ready_in_place_is_loaded_once(sandbox_factory):
    server = sandbox_factory("sessionreports", scale=60, days=20, definitions=1, subscriptions=2)
    app = server.app
    config = config_for(server, page_size=7)
    first = run_tap(TAP, config, streams=STREAMS)
    assert first.returncode == 0, first.stderr[-3000:]
    waiting = not_ready_in_window(app)
    assert len(waiting) >= 3
    # every report seen not ready is remembered with the modified_at it had
    assert pending_of(first) == {rid: app.report(index_of(rid))["modified_at"].replace("Z", "+00:00")
                                 for rid in waiting}
    assert not {rid for rid, _ in keys(first, "report_rows")} & waiting

    (done,) = app.advance(new=0, finished=0, finished_in_place=1)["finished_in_place_reports"]
    before = {r["id"]: r["modified_at"] for r in first.records("reports")}[done]
    assert app.report(index_of(done))["modified_at"].replace("Z", "+00:00") == before  # unchanged
    server.clear_log()
    second = run_tap(TAP, config, state=first.state, streams=STREAMS)
    assert second.returncode == 0, second.stderr[-3000:]
    # its rows, exactly once and only its rows
    rows = app.report_rows(index_of(done))
    assert keys(second, "report_rows") == [(done, n) for n in range(1, rows + 1)]
    assert [d["path"] for d in server.logged(r"/csv$")] == [f"/api/v2/report/{done}/csv"]
    # the report goes out again, ready, at its old modified_at; the bookmark did not move back
    (again,) = [r for r in second.records("reports") if r["id"] == done]
    assert again["is_ready"] is True and again["modified_at"] == before
    assert second.bookmark("reports")["replication_key_value"] == first.bookmark("reports")["replication_key_value"]
    # asked for by id, with the documented filter syntax
    (recheck,) = [r["params"] for r in server.logged(r"^/api/v2/report$") if "id.in(" in r["params"]["filter"]]
    assert recheck["filter"] == f"id.in({','.join(pending_of(first))})" and recheck["order"] == "id"
    # the state stays bounded: the ready one left it, the others wait
    assert set(pending_of(second)) == waiting - {done} == not_ready_in_window(app)

    server.clear_log()
    third = run_tap(TAP, config, state=second.state, streams=STREAMS)
    assert third.returncode == 0, third.stderr[-3000:]
    assert third.counts().get("report_rows", 0) == 0 and server.logged(r"/csv$") == []
    assert done not in {r["id"] for r in third.records("reports")}
    assert set(pending_of(third)) == waiting - {done}


def test_a_report_gone_before_it_was_ready_is_dropped_from_the_state(sandbox_factory):
    server = sandbox_factory("sessionreports", scale=60, days=20, definitions=1, subscriptions=2)
    config = config_for(server)
    first = run_tap(TAP, config, streams=STREAMS)
    assert first.returncode == 0, first.stderr[-3000:]
    gone, *kept = sorted(pending_of(first))
    assert kept
    # the documented DELETE /api/v2/report/<id>
    answer = requests.delete(f"{server.url}/api/v2/report/{gone}", headers={"Authorization": TOKEN}, timeout=10)
    assert answer.json() == {"result": "success"}
    second = run_tap(TAP, config, state=first.state, streams=STREAMS)
    assert second.returncode == 0, second.stderr[-3000:]
    assert sorted(pending_of(second)) == kept
    assert f"Report {gone}, seen not ready, is no longer listed" in second.stderr
    assert second.counts().get("report_rows", 0) == 0


def test_a_sync_killed_in_a_rechecked_report_resumes_it(sandbox_factory):
    # a 25,000-row report becomes ready in place; the sync reading it is killed
    # after the STATE at 10,000 rows; a new report arrives before the resume
    server = sandbox_factory("sessionreports", scale=10, days=3, definitions=0, subscriptions=0, rows_per_report=2)
    app = server.app
    config = config_for(server, start_date="2000-01-01")
    first = run_tap(TAP, config, streams=STREAMS)
    assert first.returncode == 0, first.stderr[-3000:]
    assert list(pending_of(first)) == [str(REPORT_ID_BASE + 7)]
    app.rows_per_report = 25_000
    (done,) = app.advance(new=0, finished=0, finished_in_place=1)["finished_in_place_reports"]
    killed = run_tap_until(TAP, config, records_before_kill=15_000, state=first.state, streams=STREAMS)
    assert killed.returncode != 0
    assert done in pending_of(killed)  # not left before its rows are written
    partition = next(p for p in killed.bookmark("report_rows")["partitions"] if p["context"]["report_id"] == done)
    assert partition["rows"] == 10_000 and not partition.get("complete")

    (new,) = app.advance(new=1, finished=0, finished_in_place=0)["new_reports"]
    resumed = run_tap(TAP, config, state=killed.state, streams=STREAMS)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    rows = keys(resumed, "report_rows")
    assert [n for rid, n in rows if rid == done] == list(range(10_001, 25_001))
    assert [n for rid, n in rows if rid == new] == list(range(1, 25_001))
    assert {rid for rid, _ in rows} == {done, new}
    assert pending_of(resumed) == {}
