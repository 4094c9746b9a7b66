"""Dagster runs of meltano.yml's jobs against the sandbox, into a real
PostgreSQL warehouse, with Meltano's state in PostgreSQL too (its system
database: MELTANO_DATABASE_URI), the way workers share it in production.

The project is a copy of meltano.yml (as it reads now) with a few jobs into
target-postgres added; its plugins are installed once for the module, in a
private MELTANO_SYS_DIR_ROOT.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
import typing as t
import uuid
from pathlib import Path

import pytest
import yaml

from tests.demo import MELTANO, ROOT, link_packages, project_config
from tests.e2e.pgserver import PostgresServer, bin_dir
from tests.orchestrate.conftest import DAGSTER_BIN, DAGSTER_SIDE, ORCHESTRATE, base_env, dagster_side
from tests.sandbox import Sandbox

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bin_dir() is None, reason="PostgreSQL is not installed (.ci/run installs it)"),
]

TEST_JOBS = [
    {"name": "orch-activtrak", "tasks": ["tap-activtrak target-postgres"]},
    {"name": "orch-accounts", "tasks": ["tap-activtrak--eu target-postgres", "tap-activtrak--us target-postgres"]},
]
PLUGINS = ["tap-activtrak", "tap-activtrak--eu", "tap-activtrak--us", "target-postgres"]
KILL_WAIT_SECONDS = 180


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> tuple[Path, Path]:
    """(project root, MELTANO_SYS_DIR_ROOT): meltano.yml plus the test jobs, plugins installed."""
    root = tmp_path_factory.mktemp("project")
    config = project_config()
    config["jobs"] = [*(config.get("jobs") or []), *TEST_JOBS]
    (root / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    link_packages(root)  # the taps, the loader packages (pip_url -e ./<folder>)
    (root / "transform").symlink_to(ROOT / "transform")  # the dbt project
    sys_dir = tmp_path_factory.mktemp("meltano")
    proc = subprocess.run([MELTANO, "install", *PLUGINS], cwd=root, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "MELTANO_SYS_DIR_ROOT": str(sys_dir)}, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return root, sys_dir


class Setup(t.NamedTuple):
    env: dict[str, str]
    warehouse: str
    state_db: str


@pytest.fixture
def setup(project, postgres, dagster_venv, dagster_home, request) -> Setup:
    """A warehouse database and a Meltano system database of this test's own."""
    root, sys_dir = project
    name = f"{request.node.name[:40].lower()}_{uuid.uuid4().hex[:6]}"
    name = "".join(c if c.isalnum() else "_" for c in name)
    warehouse, state_db = f"w_{name}", f"s_{name}"
    for database in (warehouse, state_db):
        postgres.sql(f"create database {database}", database="postgres")
    env = base_env(
        dagster_home, sys_dir,
        **{**postgres.meltano_env(), "TARGET_POSTGRES_DATABASE": warehouse},
        MELTANO_PROJECT_ROOT=str(root),
        MELTANO_ENVIRONMENT="sandbox",
        # the state: Meltano's system database in PostgreSQL (meltano 4.4 has
        # no postgresql:// state backend; `systemdb` keeps it in that database)
        MELTANO_DATABASE_URI=f"postgresql+psycopg://{postgres.user}@{postgres.host}:{postgres.port}/{state_db}",
        MELTANO_STATE_BACKEND_URI="systemdb",
        MELTANO_DAGSTER_OP_RETRIES="3",
        MELTANO_DAGSTER_RETRY_DELAY="1",
    )
    # create the system database's tables before runs start side by side
    subprocess.run([MELTANO, "state", "list"], cwd=root, env=env, capture_output=True, timeout=300, check=True)
    return Setup(env, warehouse, state_db)


def counts(postgres: PostgresServer, database: str, schema: str) -> dict[str, int]:
    tables = postgres.sql(f"select table_name from information_schema.tables where table_schema = '{schema}'",
                          database)
    return {n: int(postgres.sql(f'select count(*) from "{schema}"."{n}"', database)[0][0]) for (n,) in tables}


def loaded(postgres: PostgresServer, setup: Setup, schema: str, server: Sandbox) -> dict[str, int]:
    got = counts(postgres, setup.warehouse, schema)
    return {stream: got.get(stream, 0) for stream in server.app.info()["expected_counts"]}


def state_of(postgres: PostgresServer, setup: Setup, state_id: str) -> str:
    rows = postgres.sql(f"select completed_state from state where state_id = '{state_id}'", setup.state_db)
    assert rows, f"no state {state_id} in PostgreSQL"
    return rows[0][0]


def local_state_ids(sys_dir: Path) -> list[str]:
    ids = []
    for path in sys_dir.rglob("meltano.db"):
        with contextlib.closing(sqlite3.connect(path)) as con:
            if con.execute("select 1 from sqlite_master where name = 'state'").fetchone():
                ids += [row[0] for row in con.execute("select state_id from state")]
    return ids


def events(result: dict, kind: str) -> list[dict]:
    return [e for e in result["events"] if e["type"] == kind]


def test_job_runs_into_postgres_with_state_in_postgres_then_incrementally(postgres, project, setup, sandbox_factory,
                                                                          tmp_path):
    server = sandbox_factory("activtrak", scale=1500, seed=3, users=3, computers=2)
    env = {**setup.env, "SANDBOX_ACTIVTRAK_URL": server.url}
    result = dagster_side("execute", "orch_activtrak", env=env, log=tmp_path / "run1.log")
    assert result["status"] == "SUCCESS", result
    assert [e["step"] for e in events(result, "STEP_SUCCESS")] == ["tap_activtrak_target_postgres"]
    assert loaded(postgres, setup, "tap_activtrak", server) == server.app.info()["expected_counts"]
    first_state = state_of(postgres, setup, "sandbox:tap-activtrak-to-target-postgres")
    assert '"bookmarks"' in first_state
    # nothing of it in this worker's own system database (the one `meltano install` made)
    assert local_state_ids(project[1]) == []

    # time passes; a run on another Dagster instance reads the state back from PostgreSQL
    server.app.advance(new=30, late=5)
    server.clear_log()
    other_home = tmp_path / "other_dagster_home"
    other_home.mkdir()
    (other_home / "dagster.yaml").write_text((ORCHESTRATE / "dagster.yaml").read_text())
    result = dagster_side("execute", "orch_activtrak", env={**env, "DAGSTER_HOME": str(other_home)},
                          log=tmp_path / "run2.log")
    assert result["status"] == "SUCCESS", result
    expected = server.app.info()["expected_counts"]
    assert expected["activity_log"] == 1535
    assert loaded(postgres, setup, "tap_activtrak", server) == expected
    log = server.logged("activitylog")
    assert log and all("cursor" in entry["params"] for entry in log), "the second run started over"
    assert state_of(postgres, setup, "sandbox:tap-activtrak-to-target-postgres") != first_state


def test_two_accounts_run_at_once_with_their_own_rows_and_state(postgres, setup, sandbox_factory, tmp_path):
    eu = sandbox_factory("activtrak", scale=1200, seed=7, users=3, computers=2)
    us = sandbox_factory("activtrak", scale=1700, seed=8, users=4, computers=2)
    env = {**setup.env, "SANDBOX_ACTIVTRAK_EU_URL": eu.url, "SANDBOX_ACTIVTRAK_US_URL": us.url}
    result = dagster_side("execute", "orch_accounts", env=env, log=tmp_path / "run1.log")
    assert result["status"] == "SUCCESS", result
    steps = {"tap_activtrak__eu_target_postgres", "tap_activtrak__us_target_postgres"}
    starts = {e["step"]: e["time"] for e in events(result, "STEP_START")}
    ends = {e["step"]: e["time"] for e in events(result, "STEP_SUCCESS")}
    assert set(starts) == set(ends) == steps
    # at once: each account's op started before the other's ended
    assert max(starts.values()) < min(ends.values())

    assert loaded(postgres, setup, "tap_activtrak_eu", eu) == {
        "activity_log": 1200, "working_hours_users": eu.app.days * 3, "working_hours_computers": eu.app.days * 2}
    assert loaded(postgres, setup, "tap_activtrak_us", us) == {
        "activity_log": 1700, "working_hours_users": us.app.days * 4, "working_hours_computers": us.app.days * 2}
    eu_state = state_of(postgres, setup, "sandbox:tap-activtrak--eu-to-target-postgres")
    us_state = state_of(postgres, setup, "sandbox:tap-activtrak--us-to-target-postgres")
    assert '"bookmarks"' in eu_state and '"bookmarks"' in us_state and eu_state != us_state

    # only the EU account has new entries: only its rows and state move
    eu.app.advance(new=30, late=5)
    eu.clear_log()
    us.clear_log()
    result = dagster_side("execute", "orch_accounts", env=env, log=tmp_path / "run2.log")
    assert result["status"] == "SUCCESS", result
    assert loaded(postgres, setup, "tap_activtrak_eu", eu)["activity_log"] == 1235
    assert loaded(postgres, setup, "tap_activtrak_us", us)["activity_log"] == 1700
    for server in (eu, us):
        log = server.logged("activitylog")
        assert log and all("cursor" in entry["params"] for entry in log)
    assert state_of(postgres, setup, "sandbox:tap-activtrak--eu-to-target-postgres") != eu_state


def test_a_run_against_a_failing_api_is_retried_by_dagster_and_succeeds(postgres, setup, sandbox_factory, tmp_path):
    server = sandbox_factory("activtrak", scale=800, seed=4, users=2, computers=2)
    # the tap gives up after 2 tries of a request; the API answers 500 four times
    env = {**setup.env, "SANDBOX_ACTIVTRAK_URL": server.url, "TAP_ACTIVTRAK_MAX_RETRIES": "2"}
    server.add_fault("status", path="activitylog", status=500, times=4)
    result = dagster_side("execute", "orch_activtrak", env=env, log=tmp_path / "run.log")
    assert result["status"] == "SUCCESS", result
    step = "tap_activtrak_target_postgres"
    assert [e["step"] for e in events(result, "STEP_UP_FOR_RETRY")] == [step, step]
    assert [e["step"] for e in events(result, "STEP_RESTARTED")] == [step, step]
    assert [e["step"] for e in events(result, "STEP_SUCCESS")] == [step]
    assert server.pending_faults() == 0
    assert [e["status"] for e in server.logged("activitylog")].count(500) == 4
    assert loaded(postgres, setup, "tap_activtrak", server) == server.app.info()["expected_counts"]


def test_two_runs_of_one_account_never_overlap(postgres, setup, sandbox_factory, tmp_path):
    server = sandbox_factory("activtrak", scale=600, seed=6, users=2, computers=2)
    env = {**setup.env, "SANDBOX_ACTIVTRAK_URL": server.url}
    # the first run holds its account: its first activity log page takes 30 s
    server.add_fault("slow", path="activitylog", delay=30)
    first_log = tmp_path / "first.log"
    with first_log.open("w") as out:
        first = subprocess.Popen([str(DAGSTER_BIN / "python"), str(DAGSTER_SIDE), "execute", "orch_activtrak"],
                                 cwd=ORCHESTRATE, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while not any(e["fault"] == "slow" for e in server.logged("activitylog")):
            assert first.poll() is None, first_log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the first run never reached the activity log"
            time.sleep(0.2)
        # a second run of the same job, i.e. the same extractor, meanwhile
        second = dagster_side("execute", "orch_activtrak", env=env, log=tmp_path / "second.log")
        first.wait(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    (line,) = [x for x in first_log.read_text().splitlines() if x.startswith("RESULT ")]
    first_result = json.loads(line[len("RESULT "):])
    assert first_result["status"] == second["status"] == "SUCCESS", (first_result, second)
    step = "tap_activtrak_target_postgres"
    (first_end,) = [e["time"] for e in events(first_result, "STEP_SUCCESS")]
    (second_start,) = [e["time"] for e in events(second, "STEP_START")]
    # the second run's op waited in the pool of tap-activtrak until the first one's had ended
    assert second_start >= first_end
    blocked = [e for e in events(second, "ENGINE_EVENT") if e["step"] == step]
    assert blocked and blocked[0]["message"] == "Step blocked by limit for pool meltano/tap-activtrak"
    assert loaded(postgres, setup, "tap_activtrak", server) == server.app.info()["expected_counts"]


def _marked_pids(marker: str) -> list[int]:
    """Processes whose environment carries ``marker`` (the run's whole process tree)."""
    found = []
    needle = f"ORCHESTRATE_TEST_MARK={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_run_killed_mid_way_and_retried_loads_every_record_once(postgres, setup, sandbox_factory, tmp_path):
    server = sandbox_factory("activtrak", scale=5000, seed=5, users=2, computers=2)
    marker = uuid.uuid4().hex
    env = {**setup.env, "SANDBOX_ACTIVTRAK_URL": server.url, "ORCHESTRATE_TEST_MARK": marker,
           # batches of 1000 rows: committed, with their state, before the kill
           "TARGET_POSTGRES_BATCH_SIZE_ROWS": "1000"}
    # pages 1 and 2 of the activity log come, page 3 hangs: then the worker dies
    server.add_fault("slow", path="activitylog", skip=2, delay=30)
    log = (tmp_path / "killed.log").open("w")
    runner = subprocess.Popen([str(DAGSTER_BIN / "python"), str(DAGSTER_SIDE), "execute", "orch_activtrak"],
                              cwd=ORCHESTRATE, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + KILL_WAIT_SECONDS
        while not any(e["fault"] == "slow" for e in server.logged("activitylog")):
            assert runner.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the run never reached the third page"
            time.sleep(0.2)
        time.sleep(0.5)
    finally:
        # the worker dies at once: the runner, the step process, meltano, the tap, the target
        for pid in _marked_pids(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        runner.wait(timeout=30)
        server.clear_faults()
    assert runner.returncode == -signal.SIGKILL
    for _ in range(100):
        if not _marked_pids(marker):
            break
        time.sleep(0.1)
    assert not _marked_pids(marker), "processes of the killed run are still running"
    expected = server.app.info()["expected_counts"]
    assert loaded(postgres, setup, "tap_activtrak", server)["activity_log"] < expected["activity_log"]

    result = dagster_side("resume", "orch_activtrak", env=env, log=tmp_path / "resumed.log")
    assert result["status"] == "SUCCESS", result
    assert result["parent"], "not a re-execution of the killed run"
    assert loaded(postgres, setup, "tap_activtrak", server) == expected
    # every record once: as many rows as distinct keys (logId, however the loader spells it)
    ((key,),) = postgres.sql(
        "select column_name from information_schema.columns where table_schema = 'tap_activtrak' "
        "and table_name = 'activity_log' and replace(lower(column_name), '_', '') = 'logid'", setup.warehouse)
    distinct = postgres.sql(f'select count(distinct "{key}") from "tap_activtrak"."activity_log"', setup.warehouse)
    assert int(distinct[0][0]) == expected["activity_log"]
    assert '"bookmarks"' in state_of(postgres, setup, "sandbox:tap-activtrak-to-target-postgres")
