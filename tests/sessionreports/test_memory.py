"""report_rows reads a CSV as a stream: the tap's memory does not grow with it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.sessionreports.helpers import TAP, config_for
from tests.taputil import discover, select_streams, tap_command

# Measured from a small intermediate process: a child forked straight from a
# large pytest worker inherits the worker's resident size in its ru_maxrss.
MEASURE = """
import json, sys
from tests.bench.common import measure
print(measure(json.loads(sys.argv[1])).peak_rss_mb)
"""


def peak_rss_mb(server, tmp_path) -> float:
    config = config_for(server)
    catalog = select_streams(discover(TAP, config), ["report_rows"])
    cmd = tap_command(TAP, config, tmp_path, catalog=catalog)
    out = subprocess.run([sys.executable, "-c", MEASURE, json.dumps(cmd)], capture_output=True,
                         text=True, check=True, timeout=120)
    return float(out.stdout.strip())


def test_peak_memory_does_not_grow_with_the_csv(sandbox_factory, tmp_path):
    small = sandbox_factory("sessionreports", scale=1, days=2, definitions=0, subscriptions=0, rows_per_report=2_000)
    large = sandbox_factory("sessionreports", scale=1, days=2, definitions=0, subscriptions=0, rows_per_report=200_000)
    small_mb = peak_rss_mb(small, tmp_path)
    large_mb = peak_rss_mb(large, tmp_path)
    # 100 times the rows (about 25 MB more CSV): the same memory, within noise
    assert large_mb - small_mb < 8, (small_mb, large_mb)
    assert large_mb < 100, large_mb
