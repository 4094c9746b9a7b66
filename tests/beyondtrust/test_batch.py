"""BATCH messages and ACTIVATE_VERSION: a full-table stream that sends
ACTIVATE_VERSION never goes BATCH (the BATCH rows of singer-sdk 0.54 loaders
carry no ``_sdc_*`` metadata, so the next ACTIVATE_VERSION would mark them
deleted); an incremental stream still does."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlparse

from tests.taputil import run_tap

TAP = "tap-beyondtrust"


def test_full_table_streams_with_activate_version_send_records_and_incremental_ones_batches(
        sandbox_factory, tmp_path):
    server = sandbox_factory("beyondtrust", scale=40, days=2, jump_events_per_day=9, archive_count=6,
                             archive_events=20)
    config = {
        "api_url": server.url,
        **server.app.info()["credentials"],
        "retry_backoff_seconds": 0.01,
        "emit_activate_version_messages": True,
        "batch_config": {"encoding": {"format": "jsonl", "compression": "gzip"},
                         "storage": {"root": f"file://{tmp_path}", "prefix": "batch-"}},
    }
    run = run_tap(TAP, config, streams=["jump_items", "state_archives"])
    assert run.returncode == 0, run.stderr[-3000:]
    expected = server.app.info()["expected_counts"]

    # the full-table stream: RECORD messages, then ACTIVATE_VERSION with their version
    archives = [m for m in run.messages if m.get("stream") == "state_archives"]
    records = [m for m in archives if m["type"] == "RECORD"]
    assert len(records) == expected["state_archives"] > 0
    assert not [m for m in archives if m["type"] == "BATCH"]
    activations = [m for m in archives if m["type"] == "ACTIVATE_VERSION"]
    assert activations and {m["version"] for m in activations} == {r["version"] for r in records}

    # the incremental stream: BATCH messages only, whose files hold every row once
    jumps = [m for m in run.messages if m.get("stream") == "jump_items"]
    assert not [m for m in jumps if m["type"] in ("RECORD", "ACTIVATE_VERSION")]
    batches = [m for m in jumps if m["type"] == "BATCH"]
    assert batches
    files = [Path(urlparse(uri).path) for m in batches for uri in m["manifest"]]
    assert files and all(f.exists() and f.parent == tmp_path and f.name.startswith("batch-") for f in files)
    rows = [json.loads(line) for f in files for line in gzip.decompress(f.read_bytes()).splitlines() if line.strip()]
    assert len(rows) == expected["jump_items"] > 0
    assert len({json.dumps([r["event_id"], r["timestamp"]]) for r in rows}) == len(rows)
