"""SLOW (about half a minute): a 500 MB SupportSession answer, synced with flat memory.

The tap reads one SupportSession answer of more than 500 MB (one window for
the whole range; chat bodies padded so the answer is large without needing
hundreds of thousands of records) and its peak RSS, measured by wait4 on the
tap's own process, must stay under 150 MB: the XML is parsed as a stream and
each session is cleared once emitted.
"""

from __future__ import annotations

import datetime as dt
import json

from tests.bench.common import measure
from tests.taputil import discover, select_streams, tap_executable

TAP = "tap-beyondtrust"
SESSIONS = 13_000
PADDING = 20_000  # bytes of chat text per padded event
MAX_RSS_MB = 150


def test_a_500_mb_support_session_answer_syncs_with_flat_memory(sandbox_factory, tmp_path):
    server = sandbox_factory("beyondtrust", scale=SESSIONS, days=30, event_padding=PADDING)
    app = server.app
    closed = [i for i in range(app.session_total) if app.session_times(i)[1] is not None]
    sample = [len(app.session_xml(i).encode()) for i in closed[::100]]
    unended = app.session_total - len(closed)  # asked by lsids after the end_time window
    assert sum(sample) / len(sample) * len(closed) > 500e6, "the answer is over 500 MB"

    config = {"api_url": server.url, **app.info()["credentials"], "window_days": 60,
              "start_date": dt.datetime.fromtimestamp(app.first_ts, dt.timezone.utc).isoformat()}
    (tmp_path / "config.json").write_text(json.dumps(config))
    catalog = select_streams(discover(TAP, config), ["support_sessions"])
    (tmp_path / "catalog.json").write_text(json.dumps(catalog))
    cmd = [tap_executable(TAP), "--config", str(tmp_path / "config.json"),
           "--catalog", str(tmp_path / "catalog.json")]
    with (tmp_path / "out.jsonl").open("wb") as out:
        result = measure(cmd, stdout=out)

    records = 0
    with (tmp_path / "out.jsonl").open("rb") as out:
        for line in out:
            records += line.startswith(b'{"type":"RECORD"')
    assert records == len(closed) + unended
    (call,) = [c for c in server.logged("/api/reporting")
               if c["params"]["generate_report"] == "SupportSession" and "end_time" in c["params"]]
    assert call["status"] == 200
    assert result.peak_rss_mb < MAX_RSS_MB, f"peak RSS {result.peak_rss_mb:.0f} MB"
    print(f"500 MB answer: {records} sessions, peak RSS {result.peak_rss_mb:.0f} MB, "
          f"{result.cpu_seconds:.1f} CPU s, {result.wall_seconds:.1f} s")
