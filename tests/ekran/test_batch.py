"""tap-ekran with singer-sdk's BATCH messages and ACTIVATE_VERSION: the sessions
stream read as a full table (by the catalog) with ACTIVATE_VERSION stays RECORD
messages (BATCH rows carry no version, so the loader's ACTIVATE_VERSION would
mark them deleted); read incrementally, as it is by default, it goes BATCH."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlparse

from tests.ekran.test_sync import config_for
from tests.taputil import discover, run_tap

TAP = "tap-ekran"


def batch_config(root: Path) -> dict:
    return {"encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": root.as_uri(), "prefix": "ekran-"}, "batch_size": 150}


def test_full_table_with_activate_version_sends_records_incremental_sends_batches(sandbox_factory, tmp_path):
    server = sandbox_factory("ekran", scale=400, days=2)
    batches = tmp_path / "batches"
    batches.mkdir()
    config = config_for(server, emit_activate_version_messages=True, batch_config=batch_config(batches))
    expected = len(server.app.select(server.app.first_ts, None))
    assert expected == 400

    # read as a full table: RECORD messages of one version, announced by ACTIVATE_VERSION
    catalog = discover(TAP, config)
    (entry,) = catalog["streams"]
    entry["replication_method"] = "FULL_TABLE"
    full = run_tap(TAP, config, catalog=catalog)
    assert full.returncode == 0, full.stderr[-3000:]
    assert not [m for m in full.messages if m["type"] == "BATCH"] and not list(batches.iterdir())
    assert sorted(r["sessionId"] for r in full.records("sessions")) == list(range(1, 401))
    (activate,) = [m for m in full.messages if m["type"] == "ACTIVATE_VERSION"]
    assert {m["version"] for m in full.messages if m["type"] == "RECORD"} == {activate["version"]}

    # incrementally: BATCH messages whose files hold every session once, no ACTIVATE_VERSION
    run = run_tap(TAP, config)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.records() == [] and not [m for m in run.messages if m["type"] == "ACTIVATE_VERSION"]
    messages = [m for m in run.messages if m["type"] == "BATCH"]
    assert len(messages) == 3 and {m["stream"] for m in messages} == {"sessions"}
    rows = []
    for message in messages:
        for url in message["manifest"]:
            path = Path(urlparse(url).path)
            assert path.parent == batches and path.name.startswith("ekran-")
            with gzip.open(path, "rt") as lines:
                rows += [json.loads(line) for line in lines]
    assert sorted(r["sessionId"] for r in rows) == list(range(1, 401))
    # the state is written after each batch is out, never ahead of rows still in an unsent file
    states = [i for i, m in enumerate(run.messages) if m["type"] == "STATE"
              and "replication_key_value" in m["value"]["bookmarks"].get("sessions", {})]
    assert states and min(states) > run.messages.index(messages[-1])
    assert not [m for m in run.messages if m["type"] == "STATE"
                and "resume" in m["value"]["bookmarks"].get("sessions", {})]
    assert run.bookmark("sessions")["replication_key_value"]


def test_the_stream_keeps_batches_unless_full_table_with_activate_version():
    from tap_ekran.tap import TapEkran

    config = {"api_url": "https://ekran.example.com", "api_token": "t",
              "batch_config": {"encoding": {"format": "jsonl"}, "storage": {"root": "file:///tmp"}}}
    for activate, forced, batches in ((False, None, True), (True, None, True), (False, "FULL_TABLE", True),
                                      (True, "FULL_TABLE", False)):
        tap = TapEkran(config={**config, "emit_activate_version_messages": activate}, parse_env_config=False)
        sessions = tap.streams["sessions"]
        sessions.forced_replication_method = forced
        assert (sessions.get_batch_config(tap.config) is not None) == batches, (activate, forced)
