"""tap-beyondtrust: a SupportSession answer of 200,000 sessions and an event
archive of 2,000,000 events, each against a plain lxml/gzip client reading the
same sandbox."""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

from tests.bench.common import BenchResult, measure, python_module
from tests.sandbox import start
from tests.taputil import discover, select_streams, tap_command

TAP = "tap-beyondtrust"
SESSIONS = 200_000
ARCHIVE_EVENTS = 2_000_000
ARCHIVE_STREAMS = ["event_archives", "archive_customer_client", "archive_queue", "archive_representative",
                   "archive_representative_queue", "archive_representative_support_session",
                   "archive_representative_support_session_tool", "archive_support_session",
                   "archive_support_session_attribute", "archive_support_session_skill",
                   "archive_session_events", "archive_truncate_events", "archive_other_events"]


def _config(server, start_date: str) -> dict:
    return {"api_url": server.url, **server.app.info()["credentials"], "start_date": start_date,
            "window_days": 40}  # one answer for the whole range, as the plain client asks


def _sessions(count: int) -> BenchResult:
    server = start("beyondtrust", scale=count, days=30, archive_count=0)
    try:
        app = server.app
        records = sum(1 for i in range(app.session_total) if app.session_times(i)[1] is not None)
        start_iso = dt.datetime.fromtimestamp(app.first_ts, dt.timezone.utc).isoformat()
        config = _config(server, start_iso)
        with tempfile.TemporaryDirectory() as tmp:
            catalog = select_streams(discover(TAP, config), ["support_sessions"])
            tap = measure(tap_command(TAP, config, Path(tmp), catalog=catalog))
        creds = app.info()["credentials"]
        plain = measure(python_module("tests.bench.plain_beyondtrust", "sessions", server.url,
                                      creds["client_id"], creds["client_secret"], str(app.first_ts),
                                      str(int(time.time()))))
    finally:
        server.stop()
    return BenchResult(TAP, f"SupportSession ({records:,})", records, tap, plain)


def _archive(events: int) -> BenchResult:
    server = start("beyondtrust", scale=10, days=2, archive_count=1, archive_events=events)
    try:
        app = server.app
        date = dt.datetime.fromtimestamp(app.archive_slots[0], dt.timezone.utc).date().isoformat()
        config = _config(server, date)
        with tempfile.TemporaryDirectory() as tmp:
            catalog = select_streams(discover(TAP, config), ARCHIVE_STREAMS)
            tap = measure(tap_command(TAP, config, Path(tmp), catalog=catalog))
        creds = app.info()["credentials"]
        plain = measure(python_module("tests.bench.plain_beyondtrust", "archive", server.url,
                                      creds["client_id"], creds["client_secret"], date))
    finally:
        server.stop()
    return BenchResult(TAP, f"event archive ({events:,})", events, tap, plain)


def run(scale_factor: float = 1.0) -> list[BenchResult]:
    return [
        _sessions(max(int(SESSIONS * scale_factor), 1000)),
        _archive(max(int(ARCHIVE_EVENTS * scale_factor), 1000)),
    ]


if __name__ == "__main__":
    from tests.bench.common import table

    print(table(run(0.1)))
