"""tap-ekran's sessions at 500,000 sessions against a plain client reading
the same range and pages."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

from tests.bench.common import BenchResult, measure, python_module
from tests.sandbox import start
from tests.taputil import discover, select_streams, tap_command

FULL_SIZE = 500_000
DAYS = 30


def run(scale_factor: float = 1.0) -> list[BenchResult]:
    records = max(int(FULL_SIZE * scale_factor), 1000)
    server = start("ekran", scale=records, days=DAYS)
    try:
        app = server.app
        start_date = dt.datetime.combine(app.first_day, dt.time(), dt.timezone.utc)
        # a fixed end, so that both clients read exactly the same range and pages
        end_date = dt.datetime.fromtimestamp(app.created, dt.timezone.utc)
        config = {
            "api_url": server.url,
            "api_token": app.token,
            "start_date": start_date.isoformat(),
            "end_date": end_date.isoformat(),
        }
        with tempfile.TemporaryDirectory() as tmp:
            catalog = select_streams(discover("tap-ekran", config), ["sessions"])
            cmd = tap_command("tap-ekran", config, Path(tmp), catalog=catalog)
            server.clear_log()
            tap = measure(cmd)
            tap_requests = len(server.logged())
        server.clear_log()
        plain = measure(python_module("tests.bench.plain_ekran", server.url, app.token,
                                      start_date.isoformat(), end_date.isoformat()))
        if len(server.logged()) != tap_requests:
            raise RuntimeError(f"the tap made {tap_requests} requests, the plain client {len(server.logged())}")
        emitted = len(app.select(start_date.timestamp(), end_date.timestamp()))
    finally:
        server.stop()
    return [BenchResult("tap-ekran", f"sessions ({records:,})", emitted, tap, plain)]


if __name__ == "__main__":
    from tests.bench.common import table

    print(table(run(0.1)))
