"""tap-controlio with singer-sdk's BATCH messages and ACTIVATE_VERSION: a
full-table stream that sends ACTIVATE_VERSION stays RECORD messages (BATCH rows
carry no version, so the loader's ACTIVATE_VERSION would mark them deleted);
an incremental stream goes BATCH."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlparse

from tests.controlio.test_sync import config_for, sync


def test_full_tables_with_activate_version_send_records_incremental_streams_batches(sandbox_factory, tmp_path):
    server = sandbox_factory("controlio", scale=200, days=2, users=5)
    batches = tmp_path / "batches"
    batches.mkdir()
    config = config_for(server, emit_activate_version_messages=True, batch_config={
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": batches.as_uri(), "prefix": "controlio-"},
        "batch_size": 150,
    })
    run = sync(config, streams=["users", "detailed_activities"])
    assert run.returncode == 0, run.stderr[-3000:]
    expected = server.app.expected_counts(start=server.app.first_day)

    # the full table: RECORD messages of one version, announced by ACTIVATE_VERSION
    assert run.counts() == {"users": expected["users"]}
    activate = [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]
    assert {m["stream"] for m in activate} == {"users"}
    assert {m["version"] for m in run.messages if m["type"] == "RECORD"} == {activate[0]["version"]}

    # the incremental stream: BATCH messages whose files hold every row once
    messages = [m for m in run.messages if m["type"] == "BATCH"]
    assert messages and {m["stream"] for m in messages} == {"detailed_activities"}
    rows = []
    for message in messages:
        for url in message["manifest"]:
            path = Path(urlparse(url).path)
            assert path.parent == batches and path.name.startswith("controlio-")
            with gzip.open(path, "rt") as lines:
                rows += [json.loads(line) for line in lines]
    assert len(rows) == expected["detailed_activities"] == 200
    assert len({(r["start_time"], r["user_id"], r["computer_id"]) for r in rows}) == 200
    assert run.bookmark("detailed_activities")["replication_key_value"] == server.app.today.isoformat()
    # the state is written after each batch is out, never ahead of rows still in an unsent file
    before = run.messages[: run.messages.index(messages[0])]
    assert not [m for m in before if m["type"] == "STATE"
                and "replication_key_value" in m["value"].get("bookmarks", {}).get("detailed_activities", {})]
