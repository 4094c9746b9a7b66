"""tap-sessionreports against the Fudo sandbox: counts, paging, types, state."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import requests

from tests.sandbox.sessionreports import PREDEFINED, REPORT_ID_BASE, USER_IDS
from tests.sessionreports.helpers import TAP, TOKEN, config_for, distinct_counts, keys
from tests.taputil import discover, run_tap, run_tap_until

DOCUMENTED_TITLES = {
    "5": "System report", "6": "Account access report", "7": "Safe access report",
    "8": "Server access report", "9": "Session approvals by user",
    "10": "Session sharing invites by user", "11": "Session summary",
    "12": "Sessions by server report", "13": "User access report",
    "14": "User activity report", "15": "User privilege report", "16": "User report",
}


@pytest.fixture
def sessionreports(sandbox_factory):
    # 120 reports over 45 days (start_date keeps the last 30), two per
    # modified_at, so pages of 7 split ties. start_date is the tap's default
    # (midnight UTC 30 days back), fixed here: the syncs and the sandbox's
    # counts read the same day whenever they run, even across midnight UTC
    today = dt.datetime.now(dt.timezone.utc).date()
    start = dt.datetime.combine(today - dt.timedelta(days=30), dt.time(), dt.timezone.utc)
    return sandbox_factory("sessionreports", scale=120, days=45, definitions=5, subscriptions=16,
                           start_date=start.isoformat().replace("+00:00", "Z"))


def index_of(report_id: str) -> int:
    return int(report_id) - REPORT_ID_BASE


def test_every_record_arrives_exactly_once_across_pages(sessionreports):
    run = run_tap(TAP, config_for(sessionreports, page_size=7))
    assert run.returncode == 0, run.stderr[-3000:]
    expected = sessionreports.app.info()["expected_counts"]
    assert distinct_counts(run) == expected
    # exactly once: no duplicates either
    assert {stream: len(keys(run, stream)) for stream in expected} == expected
    assert expected["reports"] < sessionreports.app.report_count  # start_date did cut older reports

    requests_ = sessionreports.logged(r"^/api/v2/report$")
    # (the last pair, alone on its page, is read once more as a group: by id)
    assert requests_[-1]["params"]["order"] == "modified_at"
    requests_ = [r for r in requests_ if r["params"]["order"] != "id"]
    assert all(r["auth"] and r["params"]["limit"] == "7" and r["params"]["order"] == "modified_at"
               for r in requests_)
    cutoff = sessionreports.app.info()["default_cutoff"]
    first = requests_[0]["params"]
    assert first["offset"] == "0"
    assert first["filter"] == f"modified_at.ge({cutoff[:19]}Z)"
    # keyset paging: each page restarts at the last modified_at seen (offset 0),
    # re-reading only the records of that time (at most a pair here)
    since = [r["params"]["filter"] for r in requests_]
    assert since == sorted(since) and len(set(since)) >= len(since) - 2
    assert all(r["params"]["offset"] == "0" for r in requests_[:-1])
    # the list ends with an empty page (after the last pair, read as a group,
    # is stepped over)
    assert -(-expected["reports"] // 7) + 1 <= len(requests_) <= -(-expected["reports"] // 5) + 2


def test_definitions_and_subscriptions_are_read_whole_on_the_first_sync(sessionreports):
    run = run_tap(TAP, config_for(sessionreports), streams=["defined_reports", "report_subscriptions"])
    assert run.returncode == 0, run.stderr[-3000:]
    definitions = {r["id"]: r for r in run.records("defined_reports")}
    # the predefined reports of the document, with its titles, though created long before start_date
    assert {k: definitions[k]["title"] for k in DOCUMENTED_TITLES} == DOCUMENTED_TITLES
    assert all(definitions[k]["predefined"] is True for k in DOCUMENTED_TITLES)
    assert len(definitions) == len(PREDEFINED) + 5
    subscriptions = run.records("report_subscriptions")
    assert len(subscriptions) == 16
    cutoff = sessionreports.app.info()["default_cutoff"]
    assert any(s["modified_at"] < cutoff.replace("Z", "+00:00") for s in subscriptions)
    first = sessionreports.logged("defined$")[0]["params"]
    assert "filter" not in first and first["order"] == "modified_at"


def test_records_are_typed_ids_are_strings_times_are_utc(sessionreports):
    run = run_tap(TAP, config_for(sessionreports), streams=["reports", "defined_reports", "report_subscriptions"])
    assert run.returncode == 0, run.stderr[-3000:]
    report = next(r for r in run.records("reports") if r["is_ready"])
    assert isinstance(report["id"], str) and report["id"].isdigit() and len(report["id"]) >= 19
    assert isinstance(report["defined_report_id"], str) and isinstance(report["user_id"], str)
    for field in ("created_at", "modified_at", "generated_at"):
        assert report[field].endswith("+00:00"), field
    # the appliance wrote generated_at with a +01:00 offset, 30 s before modified_at
    generated = dt.datetime.fromisoformat(report["generated_at"])
    modified = dt.datetime.fromisoformat(report["modified_at"])
    assert modified - generated == dt.timedelta(seconds=30)
    # attributes the document does not name are kept in `extra`, not dropped
    extras = {r["id"]: r["extra"] for r in run.records("reports")}
    assert extras[str(REPORT_ID_BASE + 115)] == {"retention_locked": True,
                                                 "undocumented_export_formats": ["csv", "html", "pdf"]}
    assert extras[str(REPORT_ID_BASE + 110)] == {"retention_locked": True}
    assert extras[str(REPORT_ID_BASE + 116)] is None
    pending = next(r for r in run.records("reports") if not r["is_ready"])
    assert pending["generated_at"] is None and pending["status"] == "generating"

    schema = run.schema("reports")
    assert schema["key_properties"] == ["id"]
    assert schema["bookmark_properties"] == ["modified_at"]
    props = schema["schema"]["properties"]
    assert list(props)[:12] == ["id", "title", "defined_report_id", "content", "generated_at", "user_id",
                                "query_filter", "query_order", "status", "created_at", "modified_at", "is_ready"]
    assert props["modified_at"]["format"] == "date-time" and "boolean" in props["is_ready"]["type"]
    assert list(run.schema("defined_reports")["schema"]["properties"])[:11] == [
        "id", "title", "type", "query_filter", "query_order", "user_id", "created_at", "modified_at",
        "predefined", "has_subscription", "subscribed"]
    assert list(run.schema("report_subscriptions")["schema"]["properties"])[:8] == [
        "id", "defined_report_id", "user_id", "period", "created_by", "created_at", "modified_at", "active"]
    subscription = run.records("report_subscriptions")[0]
    assert isinstance(subscription["active"], bool) and subscription["period"] in {
        "day", "week", "month", "quarter", "year"}


def oracle_rows(server, report_id):
    """The report's CSV read independently of the tap: requests + csv.DictReader."""
    response = requests.get(f"{server.url}/api/v2/report/{report_id}/csv",
                            headers={"Authorization": TOKEN}, timeout=10)
    response.raise_for_status()
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8"), newline="")))


def test_report_rows_keep_every_column_and_tricky_cells(sessionreports):
    run = run_tap(TAP, config_for(sessionreports), streams=["reports", "report_rows"])
    assert run.returncode == 0, run.stderr[-3000:]
    rows = run.records("report_rows")
    by_report: dict[str, list[dict]] = {}
    for row in rows:
        by_report.setdefault(row["report_id"], []).append(row)
    ready = {r["id"] for r in run.records("reports") if r["is_ready"]}
    assert set(by_report) == ready
    # every report's rows, in order, equal an independent parse of its CSV
    for report_id in sorted(by_report)[:25]:
        got = by_report[report_id]
        assert [r["row_number"] for r in got] == list(range(1, len(got) + 1))
        assert [r["columns"] for r in got] == oracle_rows(sessionreports, report_id)
    cells = [value for row in rows for value in row["columns"].values()]
    assert 'tail -f /var/log/auth.log, then "exit"\nlogout' in cells  # comma, quotes, newline
    assert "line one\r\nline two, with comma" in cells
    assert "Zoë Ødegaard, Jr." in cells
    # the columns differ per report type
    assert len({tuple(row["columns"]) for row in rows}) >= 3
    schema = run.schema("report_rows")
    # one SCHEMA per run, not one per report
    assert sum(1 for m in run.messages if m["type"] == "SCHEMA" and m["stream"] == "report_rows") == 1
    assert schema["key_properties"] == ["report_id", "row_number"]
    assert schema["schema"]["properties"]["columns"]["type"][0] == "object"


def test_only_ready_reports_are_downloaded_and_each_only_once(sessionreports):
    config = config_for(sessionreports)
    first = run_tap(TAP, config)
    assert first.returncode == 0, first.stderr[-3000:]
    info = sessionreports.app.info()
    downloads = sessionreports.logged(r"/csv$")
    assert len(downloads) == info["ready_reports_in_window"]
    not_ready = {r["id"] for r in first.records("reports") if not r["is_ready"]}
    assert not_ready and not any(d["path"].split("/")[4] in not_ready for d in downloads)

    # state stays small: only the reports sharing the reports bookmark are remembered
    partitions = first.bookmark("report_rows")["partitions"]
    assert 1 <= len(partitions) <= 2
    bookmark = first.bookmark("reports")["replication_key_value"]
    assert all(p["context"]["report_modified_at"] == bookmark and p["complete"] for p in partitions)

    sessionreports.clear_log()
    second = run_tap(TAP, config, state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    # the reports at the bookmark are listed again (filter ge), their CSVs are not read again
    assert second.counts().get("report_rows", 0) == 0
    assert sessionreports.logged(r"/csv$") == []
    assert set(keys(second, "reports")) == {r["id"] for r in first.records("reports")
                                            if r["modified_at"] == bookmark}


def test_second_sync_reads_only_new_and_changed_records(sessionreports):
    config = config_for(sessionreports, page_size=7)
    first = run_tap(TAP, config)
    assert first.returncode == 0, first.stderr[-3000:]
    changes = sessionreports.app.advance()
    sessionreports.clear_log()
    second = run_tap(TAP, config, state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]

    def at_bookmark(stream):
        mark = first.bookmark(stream)["replication_key_value"]
        return {r["id"] for r in first.records(stream) if r["modified_at"] == mark}

    new, finished = set(changes["new_reports"]), set(changes["finished_reports"])
    in_place = set(changes["finished_in_place_reports"])  # ready, modified_at unchanged
    assert finished and in_place, "advance() finished no pending report"
    assert set(keys(second, "reports")) == new | finished | in_place | at_bookmark("reports")
    # rows: the new ready reports and the ones that finished generating, nothing else
    readable = {rid for rid in new | finished | in_place if sessionreports.app.report_ready(index_of(rid))}
    assert {rid for rid, _ in keys(second, "report_rows")} == readable
    assert len(keys(second, "report_rows")) == sum(sessionreports.app.report_rows(index_of(r)) for r in readable)
    assert len(sessionreports.logged(r"/csv$")) == len(readable)
    # definitions and subscriptions: the added and the edited one, plus the bookmark's own
    assert len(set(keys(second, "defined_reports")) - at_bookmark("defined_reports")) == 2
    assert len(set(keys(second, "report_subscriptions")) - at_bookmark("report_subscriptions")) == 2
    assert sessionreports.logged("subscription$")[0]["params"]["filter"].startswith("modified_at.ge(")

    # the two syncs together hold exactly what the sandbox says should be loaded
    union = {s: set(keys(first, s)) | set(keys(second, s)) for s in first.counts()}
    assert {s: len(v) for s, v in union.items()} == sessionreports.app.info()["expected_counts"]


def test_killed_sync_resumes_from_its_state_and_loses_nothing(sessionreports):
    config = config_for(sessionreports, page_size=10)
    expected = sessionreports.app.info()["expected_counts"]
    killed = run_tap_until(TAP, config, records_before_kill=sum(expected.values()) // 2)
    assert killed.returncode != 0
    assert killed.states(), "the killed run wrote no state"
    resumed = run_tap(TAP, config, state=killed.state)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for stream, count in expected.items():
        union = set(keys(killed, stream)) | set(keys(resumed, stream))
        assert len(union) == count, stream
    # it resumed, not restarted
    assert len(keys(resumed, "report_rows")) < expected["report_rows"]


def test_killed_large_csv_resumes_after_the_rows_already_written(sandbox_factory):
    # one report of 25,000 rows: the SDK writes STATE every 10,000 records
    server = sandbox_factory("sessionreports", scale=1, days=2, definitions=0, subscriptions=0, rows_per_report=25_000)
    config = config_for(server)
    killed = run_tap_until(TAP, config, records_before_kill=15_000, streams=["reports", "report_rows"])
    assert killed.returncode != 0
    (partition,) = killed.bookmark("report_rows")["partitions"]
    assert partition["rows"] == 10_000 and not partition.get("complete")
    resumed = run_tap(TAP, config, state=killed.state, streams=["reports", "report_rows"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    numbers = [n for _, n in keys(resumed, "report_rows")]
    assert numbers == list(range(10_001, 25_001))
    union = set(keys(killed, "report_rows")) | set(keys(resumed, "report_rows"))
    assert len(union) == 25_000
    assert resumed.bookmark("report_rows")["partitions"][0]["complete"] is True


def test_start_date_end_date_and_query_filter_bound_the_reports(sessionreports):
    today = sessionreports.app.today  # the sandbox's, whatever the day when the tap runs
    start = dt.datetime.combine(today - dt.timedelta(days=20), dt.time(), dt.timezone.utc)
    end = dt.datetime.combine(today - dt.timedelta(days=5), dt.time(), dt.timezone.utc)
    user = USER_IDS[1]
    config = config_for(sessionreports, start_date=start.isoformat(), end_date=end.isoformat(),
                        query_filter=f"user_id.in({user})")
    run = run_tap(TAP, config, streams=["reports"])
    assert run.returncode == 0, run.stderr[-3000:]
    expected = set()
    for i in range(sessionreports.app.report_count):
        report = sessionreports.app.report(i)
        modified = dt.datetime.fromisoformat(report["modified_at"].replace("Z", "+00:00"))
        if start <= modified < end and report["user_id"] == user:
            expected.add(report["id"])
    assert expected and set(keys(run, "reports")) == expected
    sent = sessionreports.logged(r"^/api/v2/report$")[0]["params"]["filter"]
    assert sent == (f"modified_at.ge({start:%Y-%m-%dT%H:%M:%S}Z),modified_at.le({end:%Y-%m-%dT%H:%M:%S}Z),"
                    f"user_id.in({user})")


def test_an_appliance_that_serves_fewer_than_limit_is_still_read_to_the_end(sandbox_factory):
    server = sandbox_factory("sessionreports", scale=50, days=20, definitions=2, subscriptions=5, limit_cap=4)
    run = run_tap(TAP, config_for(server), streams=["reports", "defined_reports", "report_subscriptions"])
    assert run.returncode == 0, run.stderr[-3000:]
    expected = server.app.info()["expected_counts"]
    assert {s: len(set(keys(run, s))) for s in ("reports", "defined_reports", "report_subscriptions")} == {
        s: expected[s] for s in ("reports", "defined_reports", "report_subscriptions")}
    assert all(r["params"]["limit"] == "1000" for r in server.logged(r"^/api/v2/report$"))


def test_deselected_properties_are_left_out_of_records(sessionreports):
    catalog = discover(TAP, config_for(sessionreports))
    for entry in catalog["streams"]:
        for meta in entry["metadata"]:
            if entry["tap_stream_id"] == "reports" and meta["breadcrumb"] == ["properties", "query_filter"]:
                meta["metadata"]["selected"] = False
    run = run_tap(TAP, config_for(sessionreports), catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    reports = run.records("reports")
    assert reports and all("query_filter" not in r and "title" in r for r in reports)
    assert all("query_filter" in r for r in run.records("defined_reports"))


def test_flattening_spreads_a_rows_columns_into_properties(sessionreports):
    config = {**config_for(sessionreports), "flattening_enabled": True, "flattening_max_depth": 1}
    run = run_tap(TAP, config, streams=["reports", "report_rows"])
    assert run.returncode == 0, run.stderr[-3000:]
    rows = run.records("report_rows")
    assert rows and all("columns" not in row for row in rows)
    for row in rows[:50]:
        cells = {key[len("columns__"):]: value for key, value in row.items() if key.startswith("columns__")}
        assert cells == oracle_rows(sessionreports, row["report_id"])[row["row_number"] - 1]


def test_end_date_is_exclusive_though_the_filter_sent_is_le(sessionreports):
    app = sessionreports.app
    reports = sorted((app.report(i) for i in range(app.report_count)), key=lambda r: r["modified_at"])
    end = reports[len(reports) // 2]["modified_at"]  # a pair of reports is modified at exactly end_date
    run = run_tap(TAP, config_for(sessionreports, start_date="2000-01-01T00:00:00Z", end_date=end), streams=["reports"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(keys(run, "reports")) == sorted(r["id"] for r in reports if r["modified_at"] < end)
    assert sessionreports.logged(r"^/api/v2/report$")[0]["params"]["filter"].endswith(f"modified_at.le({end})")
    # the bookmark stays before end_date, so the next sync reads the reports at end_date
    assert run.bookmark("reports")["replication_key_value"] < end.replace("Z", "+00:00")


@pytest.mark.parametrize("whole_second", [False, True])
def test_more_records_at_one_time_than_a_page_holds_are_all_read(sandbox_factory, whole_second):
    # 20 reports share one modified_at (ties in a new order per request), the
    # page holds 7; the second sync starts from a bookmark at exactly that time,
    # written as the filter writes it (…:40Z) when it has no fraction
    import types

    server = sandbox_factory("sessionreports", scale=120, days=45, definitions=2, subscriptions=3)
    app = server.app
    tie = app.start_us + 20 * app._pair_step
    if whole_second:
        tie -= tie % 1_000_000
    original = app.report_modified.__func__
    app.report_modified = types.MethodType(lambda self, i: tie if 20 <= i < 40 else original(self, i), app)
    app._order = None
    first = run_tap(TAP, config_for(server, page_size=7, start_date="2000-01-01T00:00:00Z"), streams=["reports"])
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(keys(first, "reports")) == sorted(app.report(i)["id"] for i in range(app.report_count))
    # the group was read on its own: exactly that time, ordered by id
    groups = [r["params"] for r in server.logged(r"^/api/v2/report$") if r["params"]["order"] == "id"]
    assert groups and all(",modified_at.le(" in p["filter"] for p in groups)

    bookmark = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=tie))
    state = {"bookmarks": {"reports": {"replication_key": "modified_at",
                                       "replication_key_value": bookmark.isoformat(timespec="microseconds")}}}
    second = run_tap(TAP, config_for(server, page_size=7), streams=["reports"], state=state)
    assert second.returncode == 0, second.stderr[-3000:]
    wanted = {app.report(i)["id"] for i in range(app.report_count) if app.report_modified(i) >= tie}
    assert sorted(keys(second, "reports")) == sorted(wanted)
