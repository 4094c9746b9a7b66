"""SLOW (about half a minute): a state archive of more than 500 MB decompressed, synced with flat memory.

The sandbox generates the archive lazily (one JSON object, rows padded so the
object is large without millions of rows) and gzips it as it sends it. The
tap's resident memory is sampled from /proc while it runs; its high-water
mark (VmHWM) must stay under 150 MB: the object is parsed with ijson's event
parser as it is decompressed, one row at a time, never whole.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import threading
import time
from pathlib import Path

from tests.taputil import discover, select_streams, tap_executable

TAP = "tap-beyondtrust"
ROWS = 650  # per documented table (8 with data, one null)
PADDING = 100_000  # bytes of text per row
MAX_RSS_MB = 150


def _rss_mb(pid: int) -> float:
    """The process's peak resident size so far (VmHWM), in MB; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def test_a_500_mb_state_archive_syncs_with_flat_memory(sandbox_factory, tmp_path):
    server = sandbox_factory("beyondtrust", scale=20, days=1, archive_count=6, archive_events=2,
                             state_rows=ROWS, state_padding=PADDING)
    app = server.app
    slot = app.state_slots[-1]
    size = sum(len(chunk) for chunk in app.state_archive_chunks(slot))
    assert size > 500e6, f"the archive is over 500 MB decompressed ({size / 1e6:.0f} MB)"

    day = dt.datetime.fromtimestamp(app.state_slots[0], dt.timezone.utc).date().isoformat()
    config = {"api_url": server.url, **app.info()["credentials"], "start_date": day}
    (tmp_path / "config.json").write_text(json.dumps(config))
    streams = [e["tap_stream_id"] for e in discover(TAP, config)["streams"] if e["tap_stream_id"].startswith("state_")]
    (tmp_path / "catalog.json").write_text(json.dumps(select_streams(discover(TAP, config), streams)))
    proc = subprocess.Popen([tap_executable(TAP), "--config", str(tmp_path / "config.json"),
                             "--catalog", str(tmp_path / "catalog.json")],
                            stdout=subprocess.PIPE, stderr=(tmp_path / "stderr").open("wb"))
    samples: list[float] = []

    def sample() -> None:
        while proc.poll() is None:
            samples.append(_rss_mb(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    records, emitted = 0, 0
    assert proc.stdout is not None
    for line in proc.stdout:
        emitted += len(line)
        records += line.startswith(b'{"type":"RECORD"')
    proc.wait()
    sampler.join()
    assert proc.returncode == 0, (tmp_path / "stderr").read_text()[-3000:]
    expected = app.info()["expected_counts"]
    assert records == sum(n for stream, n in expected.items() if stream.startswith("state_"))
    assert emitted > size, "every padded row reached stdout"
    newest = dt.datetime.fromtimestamp(slot, dt.timezone.utc).date()
    midnight = int(dt.datetime.combine(newest, dt.time(), dt.timezone.utc).timestamp())
    assert app.info()["state_downloads"] == [(newest.isoformat(), (slot - midnight) // 1800 + 1)], "one download"
    peak = max(samples)
    assert len(samples) > 10 and peak > 0, "RSS was sampled while the tap ran"
    assert peak < MAX_RSS_MB, f"peak RSS {peak:.0f} MB"
    print(f"{size / 1e6:.0f} MB state archive: {records} rows, peak RSS {peak:.0f} MB")
