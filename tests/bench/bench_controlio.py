"""tap-controlio's detailed_activities report at 1,000,000 rows against a plain client."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.bench.common import BenchResult, measure, python_module
from tests.sandbox import start
from tests.taputil import discover, select_streams, tap_command

FULL_SIZE = 1_000_000
STREAM = "detailed_activities"


def run(scale_factor: float = 1.0) -> list[BenchResult]:
    records = max(int(FULL_SIZE * scale_factor), 1000)
    server = start("controlio", scale=records, days=30)
    app = server.app
    try:
        config = {
            "api_url": server.url,
            "api_token": app.token,
            "start_date": app.first_day.isoformat(),
        }
        with tempfile.TemporaryDirectory() as tmp:
            catalog = select_streams(discover("tap-controlio", config), [STREAM])
            cmd = tap_command("tap-controlio", config, Path(tmp), catalog=catalog)
            tap = measure(cmd)
        plain = measure(python_module("tests.bench.plain_controlio", server.url, app.token,
                                      app.first_day.isoformat(), app.today.isoformat()))
    finally:
        server.stop()
    return [BenchResult("tap-controlio", STREAM, records, tap, plain)]


if __name__ == "__main__":
    from tests.bench.common import table

    print(table(run(0.1)))
