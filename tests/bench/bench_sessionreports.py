"""tap-sessionreports: 100,000 reports' metadata and one 1,000,000-row CSV
report, each against a plain client reading the same sandbox."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.bench.common import BenchResult, measure, python_module
from tests.sandbox import start
from tests.taputil import discover, select_streams, tap_command

TAP = "tap-sessionreports"
REPORTS = 100_000
CSV_ROWS = 1_000_000
START = "2000-01-01T00:00:00Z"  # every report the sandbox holds


def _case(stream: str, records: int, repeat: int = 1, **sandbox: object) -> BenchResult:
    server = start("sessionreports", **sandbox)
    try:
        config = {"api_url": server.url, "api_token": server.app.token, "start_date": START}
        with tempfile.TemporaryDirectory() as tmp:
            catalog = select_streams(discover(TAP, config), [stream])
            tap = measure(tap_command(TAP, config, Path(tmp), catalog=catalog), repeat=repeat)
        plain = measure(python_module("tests.bench.plain_sessionreports", stream, server.url, server.app.token, START),
                        repeat=repeat)
    finally:
        server.stop()
    return BenchResult(TAP, f"{stream} ({records:,})", records, tap, plain)


def run(scale_factor: float = 1.0) -> list[BenchResult]:
    reports = max(int(REPORTS * scale_factor), 1000)
    rows = max(int(CSV_ROWS * scale_factor), 1000)
    return [
        # ~2 CPU-seconds a run: the best of three runs of each side
        _case("reports", reports, repeat=3, scale=reports, days=30),
        # one ready report (index 0) whose CSV has `rows` rows
        _case("report_rows", rows, scale=1, days=2, definitions=0, subscriptions=0, rows_per_report=rows),
    ]


if __name__ == "__main__":
    from tests.bench.common import table

    print(table(run(0.1)))
