"""Two ActivTrak accounts in one project (Meltano plugin inheritance:
tap-activtrak--eu and tap-activtrak--us), each against its own sandbox, each
with its own state and its own warehouse schema."""

from __future__ import annotations

import uuid

from tests.demo import meltano, warehouse_counts
from tests.e2e.conftest import meltano_output


def test_two_accounts_keep_their_own_data_and_state(sandboxes, sandbox_factory, tmp_path):
    # `sandboxes` installs the project's plugins; this test brings its own servers
    eu = sandbox_factory("activtrak", scale=1200, seed=7, users=3, computers=2)
    us = sandbox_factory("activtrak", scale=1700, seed=8, users=4, computers=2)
    warehouse = tmp_path / "accounts.duckdb"
    env = {
        "SANDBOX_ACTIVTRAK_EU_URL": eu.url,
        "SANDBOX_ACTIVTRAK_US_URL": us.url,
        "MELTANO_ENVIRONMENT": "sandbox",
        "TARGET_DUCKDB_FILEPATH": str(warehouse),
    }
    suffix = f"accounts-{uuid.uuid4().hex[:8]}"
    for tap in ("tap-activtrak--eu", "tap-activtrak--us"):
        meltano("run", "--state-id-suffix", suffix, tap, "target-duckdb", env=env, quiet=True)
    counts = warehouse_counts(warehouse)
    assert counts[("tap_activtrak_eu", "activity_log")] == 1200
    assert counts[("tap_activtrak_us", "activity_log")] == 1700
    assert counts[("tap_activtrak_eu", "working_hours_users")] == eu.app.days * 3
    assert counts[("tap_activtrak_us", "working_hours_users")] == us.app.days * 4

    # only the EU account gets new entries: only its next run brings rows
    eu.app.advance(new=30, late=5)
    eu.clear_log()
    us.clear_log()
    for tap in ("tap-activtrak--eu", "tap-activtrak--us"):
        meltano("run", "--state-id-suffix", suffix, tap, "target-duckdb", env=env, quiet=True)
    counts = warehouse_counts(warehouse)
    assert counts[("tap_activtrak_eu", "activity_log")] == 1235
    assert counts[("tap_activtrak_us", "activity_log")] == 1700
    # each resumed from its own cursor: no request started over from a date
    for server in (eu, us):
        log = server.logged("activitylog")
        assert log and all("cursor" in entry["params"] for entry in log)

    states = meltano_output("state", "list", "--pattern", f"*{suffix}", env=env)
    assert f"sandbox:tap-activtrak--eu-to-target-duckdb:{suffix}" in states
    assert f"sandbox:tap-activtrak--us-to-target-duckdb:{suffix}" in states
