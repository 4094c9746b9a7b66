"""tap-activtrak's activity log at 1,000,000 entries against a plain client."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.bench.common import BenchResult, measure, python_module
from tests.sandbox import start
from tests.taputil import discover, select_streams, tap_command

FULL_SIZE = 1_000_000


def run(scale_factor: float = 1.0) -> list[BenchResult]:
    records = max(int(FULL_SIZE * scale_factor), 1000)
    server = start("activtrak", scale=records, days=30)
    try:
        config = {
            "api_url": server.url,
            "api_token": server.app.token,
            "start_date": server.app.first_day.isoformat(),
        }
        # BATCH messages as the --batch extractors of meltano.yml send them to
        # target-postgres (gzip JSON lines, files of 10,000), beside RECORD messages
        batch = {"batch_config": {"encoding": {"format": "jsonl", "compression": "gzip"}, "batch_size": 10000}}
        with tempfile.TemporaryDirectory() as tmp:
            catalog = select_streams(discover("tap-activtrak", config), ["activity_log"])
            tap = measure(tap_command("tap-activtrak", config, Path(tmp), catalog=catalog))
            batch["batch_config"]["storage"] = {"root": f"file://{tmp}/batches"}
            (Path(tmp) / "batch").mkdir()
            batched = measure(tap_command("tap-activtrak", {**config, **batch}, Path(tmp) / "batch", catalog=catalog))
        plain = measure(python_module("tests.bench.plain_activtrak", server.url, server.app.token,
                                      server.app.first_day.isoformat()))
    finally:
        server.stop()
    return [
        BenchResult("tap-activtrak", "activity_log", records, tap, plain),
        BenchResult("tap-activtrak", "activity_log, BATCH (gzip jsonl, files of 10,000)", records, batched, plain),
    ]

