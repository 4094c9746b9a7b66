"""(Collected by test_meltano.py: every meltano run shares the project's
.meltano/run folders, so all of them run in one module, one at a time.)

Every tap of meltano.yml into a real PostgreSQL server with target-postgres:
exact rows per table, real column types, upserts on reruns, and a `meltano
run` killed with SIGKILL in the middle of a sync that the next run completes
with every record exactly once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from tests.demo import MELTANO, ROOT, Sandboxes, meltano, meltano_taps, schema_of
from tests.e2e.pgserver import PostgresServer, bin_dir

needs_postgres = pytest.mark.skipif(bin_dir() is None, reason="PostgreSQL is not installed (.ci/run installs it)")

TAPS = meltano_taps()
KILL_WAIT_SECONDS = 120


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


def table_counts(postgres: PostgresServer, schema: str, database: str) -> dict[str, int]:
    tables = postgres.sql(
        f"select table_name from information_schema.tables where table_schema = '{schema}'", database)
    return {
        name: int(postgres.sql(f'select count(*) from "{schema}"."{name}"', database)[0][0])
        for (name,) in tables
    }


def catalog_of(tap: str, env: dict) -> dict:
    proc = subprocess.run([MELTANO, "invoke", "--dump=catalog", tap], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, check=True, timeout=300)
    return json.loads(proc.stdout[proc.stdout.index("{"):])


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def assert_column_types(postgres, schema, database, catalog, streams):
    columns: dict[tuple[str, str], str] = {
        (table, _norm(column)): kind
        for table, column, kind in postgres.sql(
            "select table_name, column_name, data_type from information_schema.columns "
            f"where table_schema = '{schema}'", database)
    }
    checked = 0
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] not in streams:
            continue
        for prop, spec in entry["schema"].get("properties", {}).items():
            column = columns.get((entry["tap_stream_id"], _norm(prop)))
            if column is None:
                continue
            types = spec.get("type", [])
            types = [types] if isinstance(types, str) else types
            if spec.get("format") == "date-time":
                assert column.startswith("timestamp"), f"{entry['tap_stream_id']}.{prop} landed as {column}"
                checked += 1
            elif "object" in types:
                assert column in {"jsonb", "json"}, f"{entry['tap_stream_id']}.{prop} landed as {column}"
                checked += 1
    assert checked, f"no date-time or object column to check in {schema}"


def wait_for_request(sandboxes: Sandboxes, vendor: str, predicate, timeout: float, log) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(predicate(entry) for entry in sandboxes.admin(vendor, "requests")):
            return
        time.sleep(0.2)
    raise AssertionError(f"the {vendor} sandbox saw no such request within {timeout}s:\n{log.read_text()[-3000:]}")


@needs_postgres
@pytest.mark.parametrize("tap", sorted(TAPS))
def test_postgres_counts_types_upserts_and_crash_safety(sandboxes, postgres, tap, tmp_path):
    vendor = TAPS[tap]
    schema = schema_of(tap)
    base_env = {**sandboxes.env(), **postgres.meltano_env(), "MELTANO_ENVIRONMENT": "sandbox"}
    run_db = f"load_{schema}"
    crash_db = f"crash_{schema}"
    for database in (run_db, crash_db):
        postgres.sql(f"create database {database}", database="postgres")
    env = {**base_env, "TARGET_POSTGRES_DATABASE": run_db}
    run_id = uuid.uuid4().hex[:8]  # meltano's system database outlives the test
    suffix = f"pg-{run_id}"

    # 1. a full load: every record, with real column types
    _clear_log(sandboxes, vendor)
    meltano("run", "--full-refresh", "--state-id-suffix", suffix, tap, "target-postgres", env=env, quiet=True)
    requests_per_sync = len(sandboxes.admin(vendor, "requests"))
    expected = sandboxes.expected_counts()[vendor]
    loaded = table_counts(postgres, schema, run_db)
    assert {s: loaded.get(s, 0) for s in expected} == expected
    assert_column_types(postgres, schema, run_db, catalog_of(tap, env), expected)

    # 2. the same load again: primary keys make it an upsert, not duplicates
    meltano("run", "--full-refresh", "--state-id-suffix", suffix, tap, "target-postgres", env=env, quiet=True)
    again = table_counts(postgres, schema, run_db)
    assert {s: again.get(s, 0) for s in expected} == expected

    # 3. SIGKILL in the middle of a sync, then the next run completes it
    crash_env = {**base_env, "TARGET_POSTGRES_DATABASE": crash_db}
    crash_suffix = f"crash-{run_id}"
    _clear_log(sandboxes, vendor)
    sandboxes.admin(vendor, "faults", [{"kind": "slow", "delay": 30, "skip": max(requests_per_sync // 2, 1)}])
    proc = subprocess.Popen(
        [MELTANO, "run", "--state-id-suffix", crash_suffix, tap, "target-postgres"],
        cwd=ROOT, env={**os.environ, **crash_env}, stdout=(tmp_path / "crash.log").open("w"),
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_request(sandboxes, vendor, lambda e: e.get("fault") == "slow", KILL_WAIT_SECONDS,
                         log=tmp_path / "crash.log")
        time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        _clear_faults(sandboxes, vendor)
    assert proc.returncode == -signal.SIGKILL
    # the killed run is still marked running: --force, as after any crash
    meltano("run", "--force", "--state-id-suffix", crash_suffix, tap, "target-postgres", env=crash_env, quiet=True)
    resumed = table_counts(postgres, schema, crash_db)
    assert {s: resumed.get(s, 0) for s in expected} == expected
    state = subprocess.run([MELTANO, "state", "get", f"sandbox:{tap}-to-target-postgres:{crash_suffix}"],
                           cwd=ROOT, env={**os.environ, **crash_env}, capture_output=True, text=True, check=True)
    assert '"bookmarks"' in state.stdout

    # 4. time passes: the incremental run brings exactly the new rows
    sandboxes.admin(vendor, "advance", {})
    meltano("run", "--state-id-suffix", suffix, tap, "target-postgres", env=env, quiet=True)
    after = sandboxes.expected_counts()[vendor]
    loaded = table_counts(postgres, schema, run_db)
    assert {s: loaded.get(s, 0) for s in after} == after


def _clear_log(sandboxes: Sandboxes, vendor: str) -> None:
    sandboxes.admin(vendor, "requests", method="DELETE")


def _clear_faults(sandboxes: Sandboxes, vendor: str) -> None:
    sandboxes.admin(vendor, "faults", method="DELETE")
