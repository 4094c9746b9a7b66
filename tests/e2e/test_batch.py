"""BATCH messages into target-postgres: `meltano run tap-x--batch target-postgres`,
the extractor of meltano.yml that sends its incremental streams as BATCH files
(the PostgreSQL jobs' way), against the sandbox and a real PostgreSQL server.

One extractor with full-table, parent and child streams (tap-sessionreports:
report definitions and subscriptions read whole, reports and their CSV rows
incremental), at a small sandbox scale:

- every row the sandbox holds is loaded exactly once; the incremental leaf
  stream (report rows) came as BATCH files (its rows carry no ``_sdc_*``
  metadata), the full-table ones as RECORD messages with their table version,
  and the reports, the parent of the rows, as RECORD messages too (a parent's
  bookmark moves before its own file would be out);
- an incremental second run loads only the new rows, and a subscription
  deleted at the vendor is marked deleted (ACTIVATE_VERSION), no other row;
- the loader killed (SIGKILL) in the middle of the load: the stored state
  claims no more than the database holds, and the next run leaves every
  record exactly once.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.demo import MELTANO, ROOT, Sandboxes, meltano, plugin_executable, schema_of
from tests.e2e.pgserver import PostgresServer
from tests.e2e.postgres_cases import (
    KILL_WAIT_SECONDS,
    duplicate_keys,
    loader_pid,
    needs_postgres,
    table_counts,
    wait_for_request,
)

pytestmark = [pytest.mark.e2e, needs_postgres]

TAP = "tap-sessionreports"
EXTRACTOR = f"{TAP}--batch"
VENDOR = "sessionreports"
SCHEMA = schema_of(TAP)
FULL_TABLE = ("defined_reports", "report_subscriptions")
INCREMENTAL = ("reports", "report_rows")
#: how each stream travels: a full-table stream with ACTIVATE_VERSION, and a parent whose children
#: are synced (reports), as RECORD messages; the incremental leaf (report_rows) in BATCH files
AS_RECORDS = (*FULL_TABLE, "reports")
AS_BATCH = ("report_rows",)
KEYS = {"defined_reports": ["id"], "report_subscriptions": ["id"], "reports": ["id"],
        "report_rows": ["report_id", "row_number"]}
#: small files, so that a load is many BATCH messages and a kill lands between two of them
BATCH_SIZE = "40"


@pytest.fixture(scope="module", autouse=True)
def batch_meltano_dir(tmp_path_factory):
    """This module's own MELTANO_SYS_DIR_ROOT (plugins, run folders, state)."""
    previous = os.environ.get("MELTANO_SYS_DIR_ROOT")
    os.environ["MELTANO_SYS_DIR_ROOT"] = str(tmp_path_factory.mktemp("meltano-batch"))
    yield
    if previous is None:
        del os.environ["MELTANO_SYS_DIR_ROOT"]
    else:
        os.environ["MELTANO_SYS_DIR_ROOT"] = previous


@pytest.fixture(scope="module")
def batch_sandbox(batch_meltano_dir, tmp_path_factory):
    """The Fudo sandbox, small: 40 reports of 30 CSV rows each."""
    with Sandboxes([VENDOR], tmp_path_factory.mktemp("sandbox"), "--scale", "40",
                   "--set", f"{VENDOR}.rows_per_report=30") as running:
        meltano("install", "extractor", TAP, EXTRACTOR, env={**running.env(), "MELTANO_ENVIRONMENT": "sandbox"},
                quiet=True)
        meltano("install", "loader", "target-postgres", env={**running.env(), "MELTANO_ENVIRONMENT": "sandbox"},
                quiet=True)
        yield running


@pytest.fixture(scope="module")
def pg():
    server = PostgresServer().start()
    yield server
    server.stop()


def _env(sandbox: Sandboxes, pg, database: str, batches: Path, **extra: str) -> dict[str, str]:
    prefix = EXTRACTOR.upper().replace("-", "_")
    return {
        **sandbox.env(), **pg.meltano_env(), "MELTANO_ENVIRONMENT": "sandbox",
        "TARGET_POSTGRES_DATABASE": database,
        f"{prefix}__SELECT": json.dumps([f"{s}.*" for s in (*FULL_TABLE, *INCREMENTAL)]),
        f"{prefix}_BATCH_CONFIG_STORAGE_ROOT": batches.as_uri(),
        f"{prefix}_BATCH_CONFIG_BATCH_SIZE": BATCH_SIZE,
        **extra,
    }


def _expected(sandbox: Sandboxes) -> dict[str, int]:
    counts = sandbox.expected_counts()[VENDOR]
    return {s: counts[s] for s in (*FULL_TABLE, *INCREMENTAL)}


def _loaded(pg, database: str) -> dict[str, int]:
    counts = table_counts(pg, SCHEMA, database)
    return {s: counts.get(s, 0) for s in (*FULL_TABLE, *INCREMENTAL)}


def _duplicates(pg, database: str) -> dict[str, int]:
    catalog = {"streams": [{"tap_stream_id": s, "key_properties": k} for s, k in KEYS.items()]}
    return duplicate_keys(pg, SCHEMA, database, catalog, KEYS)


def _by_record_message(pg, database: str, table: str) -> tuple[int, int]:
    """(rows that came as RECORD messages, rows that came in BATCH files): a RECORD row
    carries target-postgres's _sdc_batched_at, a BATCH row (singer-sdk 0.54) none."""
    (records, batched), = pg.sql(
        f'select count(_sdc_batched_at), count(*) - count(_sdc_batched_at) from "{SCHEMA}"."{table}"', database)
    return int(records), int(batched)


def _records_in_files(batches: Path) -> dict[str, int]:
    """{stream: records} in the BATCH files of the folder (``<tap>--<stream>-<uuid>-<n>.json.gz``)."""
    counts: dict[str, int] = {}
    for path in batches.iterdir():
        stream = path.name.split("--", 1)[1].rsplit("-", 6)[0]
        with gzip.open(path, "rb") as lines:
            counts[stream] = counts.get(stream, 0) + sum(1 for _ in lines)
    return counts


def _stored_state(env: dict[str, str], suffix: str) -> dict | None:
    proc = subprocess.run([MELTANO, "state", "get", f"sandbox:{EXTRACTOR}-to-target-postgres:{suffix}"],
                          cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True, check=False)
    text = proc.stdout
    return json.loads(text[text.index("{"):]) if proc.returncode == 0 and "{" in text else None


def test_batch_loads_exactly_then_incrementally_and_marks_deletions(batch_sandbox, pg, tmp_path):
    database = f"batch_{uuid.uuid4().hex[:8]}"
    pg.sql(f"create database {database}", database="postgres")
    batches = tmp_path / "batches"
    env = _env(batch_sandbox, pg, database, batches)
    suffix = f"batch-{uuid.uuid4().hex[:8]}"  # meltano's system database outlives the test

    # 1. a first run: every row, the incremental streams in BATCH files, the full-table ones as RECORDs
    meltano("run", "--full-refresh", "--state-id-suffix", suffix, EXTRACTOR, "target-postgres", env=env,
            quiet=True)
    before = _expected(batch_sandbox)
    assert all(before.values()), before
    assert _loaded(pg, database) == before
    assert _duplicates(pg, database) == {}
    for stream in AS_BATCH:
        assert _by_record_message(pg, database, stream) == (0, before[stream]), stream
    for stream in AS_RECORDS:
        assert _by_record_message(pg, database, stream) == (before[stream], 0), stream
    # the files hold the leaf's records, each once; nothing of the other streams
    assert _records_in_files(batches) == {s: before[s] for s in AS_BATCH}

    for path in batches.iterdir():  # (target-postgres leaves the files it has read)
        path.unlink()

    # 2. time passes and a subscription is deleted at the vendor: the next run brings only the new rows
    (first_id,), = pg.sql(f'select min(id::text) from "{SCHEMA}".report_subscriptions', database)
    batch_sandbox.admin(VENDOR, "delete", {"stream": "report_subscriptions", "id": first_id})
    batch_sandbox.admin(VENDOR, "advance", {})
    meltano("run", "--state-id-suffix", suffix, EXTRACTOR, "target-postgres", env=env, quiet=True)
    after = _expected(batch_sandbox)
    assert after["reports"] > before["reports"] and after["report_rows"] > before["report_rows"], (before, after)
    sent = _records_in_files(batches)
    # exactly the new CSV rows
    assert sent == {"report_rows": after["report_rows"] - before["report_rows"]}, (sent, before, after)
    loaded = _loaded(pg, database)
    # soft delete: the deleted subscription's row stays, marked, beside the live ones
    assert loaded == {**after, "report_subscriptions": after["report_subscriptions"] + 1}
    assert _duplicates(pg, database) == {}
    marked = pg.sql(f'select id::text from "{SCHEMA}".report_subscriptions '
                          "where _sdc_deleted_at is not null", database)
    assert marked == [(first_id,)]
    for stream in (*INCREMENTAL, "defined_reports"):
        (deleted,), = pg.sql(f'select count(_sdc_deleted_at) from "{SCHEMA}"."{stream}"', database)
        assert int(deleted) == 0, stream


def test_loader_killed_mid_load_then_rerun_leaves_every_record_once(batch_sandbox, pg, tmp_path):
    database = f"batchkill_{uuid.uuid4().hex[:8]}"
    pg.sql(f"create database {database}", database="postgres")
    env = _env(batch_sandbox, pg, database, tmp_path / "batches")
    suffix = f"batchkill-{uuid.uuid4().hex[:8]}"
    expected = _expected(batch_sandbox)

    # the tap waits on a request halfway through; meanwhile the loader has loaded the files before it
    batch_sandbox.admin(VENDOR, "requests", method="DELETE")
    batch_sandbox.admin(VENDOR, "faults", [{"kind": "slow", "delay": 20, "skip": expected["reports"] // 2}])
    log = tmp_path / "loader-kill.log"
    proc = subprocess.Popen([MELTANO, "run", "--state-id-suffix", suffix, EXTRACTOR, "target-postgres"], cwd=ROOT,
                            env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        wait_for_request(batch_sandbox, VENDOR, lambda e: e.get("fault") == "slow", KILL_WAIT_SECONDS, log=log)
        deadline = time.monotonic() + 30
        while not table_counts(pg, SCHEMA, database).get("report_rows") and time.monotonic() < deadline:
            time.sleep(0.3)
        os.kill(loader_pid(proc.pid, plugin_executable("target-postgres"), log), signal.SIGKILL)
        proc.wait(timeout=KILL_WAIT_SECONDS)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        batch_sandbox.admin(VENDOR, "faults", method="DELETE")
    assert proc.returncode != 0, f"meltano run succeeded with its loader killed:\n{log.read_text()[-3000:]}"
    at_kill = _loaded(pg, database)
    # the kill came in the middle of the load: some rows in, not all
    assert 0 < at_kill["report_rows"] < expected["report_rows"], at_kill

    state_at_kill = _stored_state(env, suffix)

    # the next run (--force: the killed run is still marked running) completes it, every record once
    meltano("run", "--force", "--state-id-suffix", suffix, EXTRACTOR, "target-postgres", env=env, quiet=True)
    # from the state stored before the kill, if any: had it claimed rows the database did not hold, the
    # resumed run would not bring them
    assert _loaded(pg, database) == expected, state_at_kill
    assert _duplicates(pg, database) == {}
