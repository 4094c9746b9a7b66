"""tap-sessionreports with singer-sdk's BATCH messages and ACTIVATE_VERSION: a
full-table stream that sends ACTIVATE_VERSION stays RECORD messages (BATCH rows
carry no version, so the loader's ACTIVATE_VERSION would mark them deleted);
so does a parent whose children are synced (its bookmark moves before its file
is out, and a child's STATE carries it); an incremental leaf stream goes BATCH."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlparse

from tests.sessionreports.helpers import TAP, config_for
from tests.taputil import discover, run_tap, select_streams


def test_full_tables_and_parents_send_records_incremental_leaf_streams_batches(sandbox_factory, tmp_path):
    server = sandbox_factory("sessionreports", scale=50, days=10, definitions=4, subscriptions=6)
    batches = tmp_path / "batches"
    batches.mkdir()
    config = config_for(server, emit_activate_version_messages=True, batch_config={
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": batches.as_uri(), "prefix": "sessionreports-"},
        "batch_size": 20,
    })
    catalog = select_streams(discover(TAP, config), ["reports", "report_rows", "defined_reports"])
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "defined_reports":
            entry["replication_method"] = "FULL_TABLE"  # as meltano.yml's metadata sets it
    run = run_tap(TAP, config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    expected = server.app.info()["expected_counts"]

    # the full table: RECORD messages of one version, announced by ACTIVATE_VERSION;
    # the reports (the parent of report_rows): RECORD messages, each report once
    assert run.counts() == {"defined_reports": expected["defined_reports"], "reports": expected["reports"]}
    activate = [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]
    assert {m["stream"] for m in activate} == {"defined_reports"}
    assert {m["version"] for m in run.messages if m["type"] == "RECORD" and m["stream"] == "defined_reports"} \
        == {activate[0]["version"]}

    # the child (incremental, no ACTIVATE_VERSION): BATCH messages whose files
    # hold every row of the ready reports, once
    def batched(stream: str) -> list[dict]:
        messages = [m for m in run.messages if m["type"] == "BATCH" and m["stream"] == stream]
        assert messages, stream
        rows = []
        for message in messages:
            for url in message["manifest"]:
                path = Path(urlparse(url).path)
                assert path.parent == batches and path.name.startswith("sessionreports-")
                with gzip.open(path, "rt") as lines:
                    rows += [json.loads(line) for line in lines]
        return rows

    assert {m["stream"] for m in run.messages if m["type"] == "BATCH"} == {"report_rows"}
    reports = run.records("reports")
    assert len(reports) == expected["reports"] == 50
    assert len({r["id"] for r in reports}) == 50
    assert run.bookmark("reports")["replication_key_value"] == max(r["modified_at"] for r in reports)
    rows = batched("report_rows")
    assert len(rows) == len({(r["report_id"], r["row_number"]) for r in rows}) == expected["report_rows"]
    assert {r["report_id"] for r in rows} == {r["id"] for r in reports if r["is_ready"]}
