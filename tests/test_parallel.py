"""All five taps at once, each against its own vendor sandbox with faults
switched on (throttling, server errors, dropped and truncated answers): each
completes, and every stream holds exactly the records the sandbox serves."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.demo import meltano_taps, sandbox_config
from tests.taputil import run_tap

TAPS = meltano_taps()
FAULTS = [
    {"kind": "status", "status": 429, "retry_after": 1, "skip": 1},
    {"kind": "status", "status": 503, "skip": 3},
    {"kind": "reset", "skip": 5},
    {"kind": "truncate", "skip": 7},
    {"kind": "status", "status": 502, "skip": 9},
]


#: enough requests for every fault to be hit: tap-ekran reads one range per sync
CONFIG_OVERRIDES = {"tap-ekran": {"page_size": 250}}


def distinct_keys(run, stream: str) -> int:
    keys = run.schema(stream)["key_properties"]
    return len({tuple(record.get(k) for k in keys) for record in run.records(stream)})


@pytest.mark.timeout(900)
def test_five_taps_in_parallel_with_faults(sandbox_factory):
    servers = {tap: sandbox_factory(vendor) for tap, vendor in TAPS.items()}
    for server in servers.values():
        for fault in FAULTS:
            server.add_fault(**fault)

    def sync(tap: str):
        config = sandbox_config(tap, servers[tap].url) | {"retry_backoff_seconds": 0.05} | CONFIG_OVERRIDES.get(tap, {})
        return run_tap(tap, config, timeout=600)

    with ThreadPoolExecutor(max_workers=len(TAPS)) as pool:
        runs = dict(zip(TAPS, pool.map(sync, TAPS), strict=True))

    for tap, run in runs.items():
        server = servers[tap]
        assert run.returncode == 0, f"{tap} failed:\n{run.stderr[-3000:]}"
        expected = server.app.info()["expected_counts"]
        assert {stream: distinct_keys(run, stream) for stream in expected} == expected, tap
        injected = [entry for entry in server.logged() if entry["fault"]]
        assert len(injected) == len(FAULTS), f"{tap}: only {len(injected)} faults were hit"
