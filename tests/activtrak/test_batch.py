"""tap-activtrak with singer-sdk's BATCH messages and ACTIVATE_VERSION: a
full-table stream that sends ACTIVATE_VERSION stays RECORD messages (BATCH rows
carry no version, so the loader's ACTIVATE_VERSION would mark them deleted);
an incremental stream goes BATCH, its cursor saved only after its rows are out.

Every ActivTrak stream is incremental; a catalog can still ask for a full
table (replication_method FULL_TABLE), as here for working_hours_computers."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from urllib.parse import urlparse

from tests.taputil import discover, run_tap, select_streams

TAP = "tap-activtrak"


def test_a_full_table_with_activate_version_sends_records_the_incremental_log_batches(sandbox_factory, tmp_path):
    # 2,500 entries: pages of 1,000 end inside batches of 300
    server = sandbox_factory("activtrak", scale=2500, days=3, users=2, computers=4)
    batches = tmp_path / "batches"
    batches.mkdir()
    config = {
        "api_url": server.url,
        "api_token": server.app.token,
        "start_date": server.app.first_day.isoformat(),
        "emit_activate_version_messages": True,
        "batch_config": {
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": batches.as_uri(), "prefix": "activtrak-"},
            "batch_size": 300,
        },
    }
    catalog = select_streams(discover(TAP, config), ["activity_log", "working_hours_computers"])
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "working_hours_computers":
            entry["replication_method"] = "FULL_TABLE"
    run = run_tap(TAP, config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]

    # the full table: RECORD messages of one version, announced by ACTIVATE_VERSION
    assert run.counts() == {"working_hours_computers": 3 * 4}
    activate = [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]
    assert [m["stream"] for m in activate] == ["working_hours_computers"]
    assert {m["version"] for m in run.messages if m["type"] == "RECORD"} == {activate[0]["version"]}

    # the incremental log: BATCH messages whose files hold every entry once
    sent: list[int] = []  # logIds in the BATCH files sent so far
    out_before_state = []  # for each STATE with a cursor: (entries sent, the cursor's last logId)
    batch_messages = 0
    for message in run.messages:
        if message["type"] == "BATCH":
            assert message["stream"] == "activity_log"
            batch_messages += 1
            for url in message["manifest"]:
                path = Path(urlparse(url).path)
                assert path.parent == batches and path.name.startswith("activtrak-")
                with gzip.open(path, "rt") as lines:
                    sent += [json.loads(line)["logId"] for line in lines]
        elif message["type"] == "STATE":
            cursor = message["value"]["bookmarks"].get("activity_log", {}).get("cursor")
            if cursor:
                last = json.loads(base64.urlsafe_b64decode(cursor))["after"] + 1  # the sandbox's cursor
                out_before_state.append((set(sent), last))
    assert batch_messages == 9  # ceil(2500 / 300)
    assert sorted(sent) == list(range(1, 2501))
    # a cursor is saved only once every entry up to it is in a file already sent
    assert out_before_state and all(set(range(1, last + 1)) <= out for out, last in out_before_state)
    assert run.bookmark("activity_log")["cursor"]
