"""Attributes the document does not name land in `extra`, in every list stream;
a report's CSV columns, whatever they are, in `columns`."""

from __future__ import annotations

from tests.sandbox.sessionreports import REPORT_ID_BASE, SHAPE_OF, SHAPES
from tests.sessionreports.helpers import LIST_STREAMS, TAP, config_for
from tests.taputil import run_tap


def raw_records(app, stream):
    """What the sandbox serves for the stream, by id."""
    if stream == "reports":
        rows = [app.report(i) for i in range(app.report_count)]
    elif stream == "defined_reports":
        rows = [app.definition(k) for k in range(app.definition_count)]
    else:
        rows = [app.subscription(k) for k in range(app.subscriptions)]
    return {row["id"]: row for row in rows}


def test_undeclared_attributes_are_kept_in_extra(sandbox_factory):
    server = sandbox_factory("sessionreports", scale=40, days=10, definitions=3, subscriptions=6)
    run = run_tap(TAP, config_for(server))
    assert run.returncode == 0, run.stderr[-3000:]
    for stream in LIST_STREAMS:
        schema = run.schema(stream)["schema"]
        assert "object" in schema["properties"]["extra"]["type"]
        declared = set(schema["properties"]) - {"extra"}
        raw = raw_records(server.app, stream)
        records = run.records(stream)
        assert records, stream
        for record in records:
            unknown = {key: value for key, value in raw[record["id"]].items() if key not in declared}
            assert record["extra"] == (unknown or None), (stream, record["id"])
            assert set(record) == declared | {"extra"}
        undocumented = [key for record in records for key in record["extra"] or {}
                        if key.startswith("undocumented_")]
        assert undocumented, f"{stream}: no undocumented_ attribute reached extra"
    # values keep their JSON shape: lists and objects too
    reports = {r["id"]: r for r in run.records("reports")}
    assert reports[str(REPORT_ID_BASE + 39)]["extra"]["undocumented_export_formats"] == ["csv", "html", "pdf"]
    subscriptions = run.records("report_subscriptions")
    assert {"channel": "email", "format": "pdf"} in [
        (s["extra"] or {}).get("undocumented_delivery") for s in subscriptions]


def test_every_csv_column_is_kept_in_columns(sandbox_factory):
    server = sandbox_factory("sessionreports", scale=24, days=5, definitions=0, subscriptions=0, rows_per_report=2)
    run = run_tap(TAP, config_for(server), streams=["reports", "report_rows"])
    assert run.returncode == 0, run.stderr[-3000:]
    schema = run.schema("report_rows")["schema"]["properties"]
    # nothing of the CSV is declared one by one: the header names the keys, all kept
    assert set(schema) == {"report_id", "report_modified_at", "row_number", "columns"}
    for row in run.records("report_rows"):
        defined = server.app.report_defined_id(int(row["report_id"]) - REPORT_ID_BASE)
        assert list(row["columns"]) == SHAPES[SHAPE_OF.get(defined, "sessions")]
