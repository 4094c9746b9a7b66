"""(Collected by test_meltano.py: every meltano run shares the project's
.meltano/run folders, so all of them run in one module, one at a time.)

Every tap of meltano.yml into a real PostgreSQL server with target-postgres:
exact rows per table, real column types, upserts on reruns, and a `meltano
run` killed with SIGKILL in the middle of a sync (the whole run, or only its
loader) that the next run completes with every record exactly once; and
PostgreSQL down at the start or stopped in the middle of a run: a clear
error, and a state that claims no record the database does not hold."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from tests.demo import MELTANO, ROOT, Sandboxes, meltano, meltano_taps, plugin_executable, schema_of
from tests.e2e.conftest import json_output, meltano_output
from tests.e2e.extras import postgres_tables_without_undocumented
from tests.e2e.pgserver import PostgresServer, bin_dir

needs_postgres = pytest.mark.skipif(bin_dir() is None, reason="PostgreSQL is not installed (.ci/run installs it)")

TAPS = meltano_taps()
KILL_WAIT_SECONDS = 120
#: the taps whose loader alone is also killed mid-load (one stream paged; parents and children):
#: each kill costs two more runs, and the whole-run kill already covers every tap
LOADER_KILL_TAPS = ("tap-ekran", "tap-sessionreports")
#: crash runs flush (and move the state) every few rows, so that a kill lands between flushes
SMALL_BATCHES = {"TARGET_POSTGRES_BATCH_SIZE_ROWS": "200"}


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
    catalog = json_output(meltano_output("invoke", "--dump=catalog", tap, env=env, timeout=300))
    assert catalog is not None, f"{tap} dumped no catalog"
    return catalog


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


def duplicate_keys(postgres, schema, database, catalog, streams) -> dict[str, int]:
    """{table: primary keys held by more than one row}, for the tables that have any."""
    columns: dict[tuple[str, str], str] = {
        (table, _norm(column)): column
        for table, column in postgres.sql(
            "select table_name, column_name from information_schema.columns "
            f"where table_schema = '{schema}'", database)
    }
    found = {}
    for entry in catalog["streams"]:
        table = entry["tap_stream_id"]
        keys = entry.get("key_properties") or []
        if table not in streams or not keys:
            continue
        cols = ", ".join(f'"{columns[(table, _norm(k))]}"' for k in keys)
        (count,), = postgres.sql(
            f'select count(*) from (select {cols} from "{schema}"."{table}" group by {cols} '
            "having count(*) > 1) d", database)
        if int(count):
            found[table] = int(count)
    return found


def loader_pid(session: int, executable: str, log, timeout: float = 60) -> int:
    """The pid of the loader process ``executable`` that the meltano run leading
    session ``session`` started (its argv names ``.../bin/<executable>``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == session:
                continue
            try:
                if os.getsid(int(entry)) != session:
                    continue
                with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                    argv = cmdline.read().split(b"\0")
            except OSError:  # gone meanwhile
                continue
            if any(arg.decode(errors="replace").endswith(f"/bin/{executable}") for arg in argv):
                return int(entry)
        time.sleep(0.1)
    raise AssertionError(f"no {executable} process in the run within {timeout}s:\n{log.read_text()[-3000:]}")


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
    loader_db = f"loaderkill_{schema}"
    for database in (run_db, crash_db, loader_db):
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
    catalog = catalog_of(tap, env)
    assert_column_types(postgres, schema, run_db, catalog, expected)
    # fields the schemas do not name reach the extra column
    assert postgres_tables_without_undocumented(postgres, schema, run_db) == []

    # 2. the same load again: primary keys make it an upsert, not duplicates
    meltano("run", "--full-refresh", "--state-id-suffix", suffix, tap, "target-postgres", env=env, quiet=True)
    again = table_counts(postgres, schema, run_db)
    assert {s: again.get(s, 0) for s in expected} == expected

    # 3. SIGKILL in the middle of a sync, then the next run completes it
    crash_env = {**base_env, **SMALL_BATCHES, "TARGET_POSTGRES_DATABASE": crash_db}
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
    assert duplicate_keys(postgres, schema, crash_db, catalog, expected) == {}
    state = meltano_output("state", "get", f"sandbox:{tap}-to-target-postgres:{crash_suffix}", env=crash_env)
    assert '"bookmarks"' in state

    # 3b. only the loader is killed (SIGKILL) in the middle of a load; the run fails, the next completes it
    if tap in LOADER_KILL_TAPS:
        loader_env = {**base_env, **SMALL_BATCHES, "TARGET_POSTGRES_DATABASE": loader_db}
        loader_suffix = f"loaderkill-{run_id}"
        _clear_log(sandboxes, vendor)
        sandboxes.admin(vendor, "faults", [{"kind": "slow", "delay": 5, "skip": max(requests_per_sync // 2, 1)}])
        log = tmp_path / "loader-kill.log"
        proc = subprocess.Popen(
            [MELTANO, "run", "--state-id-suffix", loader_suffix, tap, "target-postgres"],
            cwd=ROOT, env={**os.environ, **loader_env}, stdout=log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_for_request(sandboxes, vendor, lambda e: e.get("fault") == "slow", KILL_WAIT_SECONDS, log=log)
            os.kill(loader_pid(proc.pid, plugin_executable("target-postgres"), log), signal.SIGKILL)
            proc.wait(timeout=KILL_WAIT_SECONDS)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            _clear_faults(sandboxes, vendor)
        assert proc.returncode != 0, f"meltano run succeeded with its loader killed:\n{log.read_text()[-3000:]}"
        meltano("run", "--force", "--state-id-suffix", loader_suffix, tap, "target-postgres", env=loader_env,
                quiet=True)
        resumed = table_counts(postgres, schema, loader_db)
        assert {s: resumed.get(s, 0) for s in expected} == expected
        assert duplicate_keys(postgres, schema, loader_db, catalog, expected) == {}

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


#: what a failed connection to PostgreSQL says (psycopg / libpq), at connect or in a session
CONNECTION_ERROR = re.compile(
    r"connection (to server .* failed|refused|failed)|could not connect|server closed the connection"
    r"|terminating connection|OperationalError", re.I)
#: the tap of the server-down cases: one sorted stream, a bookmark and a page to resume at
OUTAGE_TAP = "tap-ekran"


def wait_for_rows(server: PostgresServer, schema: str, table: str, timeout: float) -> int:
    """Rows in the table once it has some (0 if none came within ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = table_counts(server, schema, server.database).get(table, 0)
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.5)


def stored_state(tap: str, suffix: str, env: dict) -> dict | None:
    return json_output(meltano_output("state", "get", f"sandbox:{tap}-to-target-postgres:{suffix}", env=env,
                                      check=False))


def failed_run(tap: str, suffix: str, env: dict, log) -> subprocess.CompletedProcess:
    proc = subprocess.run([MELTANO, "run", "--state-id-suffix", suffix, tap, "target-postgres"], cwd=ROOT,
                          env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT,
                          timeout=KILL_WAIT_SECONDS * 3, check=False)
    return proc


@needs_postgres
def test_postgres_down_or_stopped_mid_run_fails_clearly_and_state_holds(sandboxes, tmp_path):
    tap = OUTAGE_TAP
    vendor = TAPS[tap]
    schema = schema_of(tap)
    # this case stops its server (not the module's), so commits must survive the stop
    server = PostgresServer(durable_commits=True).start()
    try:
        prefix = tap.upper().replace("-", "_")
        env = {
            **sandboxes.env(), **server.meltano_env(), **SMALL_BATCHES, "MELTANO_ENVIRONMENT": "sandbox",
            # many pages: a resumed sync starts at the page its state names (no re-read before it,
            # which could hide a state that claims too much)
            f"{prefix}_PAGE_SIZE": "100",
        }
        suffix = f"outage-{uuid.uuid4().hex[:8]}"
        expected = sandboxes.expected_counts()[vendor]

        # 1. PostgreSQL stops in the middle of the first sync: the run fails and says why
        _clear_log(sandboxes, vendor)
        sandboxes.admin(vendor, "faults", [{"kind": "slow", "delay": 30, "skip": 3}])
        log = tmp_path / "stopped.log"
        proc = subprocess.Popen([MELTANO, "run", "--state-id-suffix", suffix, tap, "target-postgres"], cwd=ROOT,
                                env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            wait_for_request(sandboxes, vendor, lambda e: e.get("fault") == "slow", KILL_WAIT_SECONDS, log=log)
            # while the tap waits for its slow page, the loader flushes what it holds: then the server goes
            loaded_before_stop = wait_for_rows(server, schema, "sessions", timeout=25)
            server.halt()
            proc.wait(timeout=KILL_WAIT_SECONDS * 3)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
            _clear_faults(sandboxes, vendor)
        output = log.read_text()
        assert proc.returncode != 0, f"the run succeeded with PostgreSQL stopped:\n{output[-3000:]}"
        assert CONNECTION_ERROR.search(output), f"no connection error in the output:\n{output[-3000:]}"

        # the stored state claims only what the database holds: resumed from it (no lookback),
        # the next sync brings every record, exactly once
        server.resume()
        state = stored_state(tap, suffix, env)
        at_failure = table_counts(server, schema, server.database).get("sessions", 0)
        assert at_failure >= loaded_before_stop
        # the stop came between flushes: some rows were loaded before it
        assert at_failure, f"nothing was loaded before PostgreSQL stopped (state {state})"
        meltano("run", "--force", "--state-id-suffix", suffix, tap, "target-postgres", env=env, quiet=True)
        after = table_counts(server, schema, server.database)
        assert {s: after.get(s, 0) for s in expected} == expected, (state, at_failure)
        catalog = catalog_of(tap, env)
        assert duplicate_keys(server, schema, server.database, catalog, expected) == {}

        # 2. PostgreSQL down at the start: the run fails at once, naming the connection; the state stays
        complete = stored_state(tap, suffix, env)
        assert complete and complete != state
        server.halt()
        log = tmp_path / "down.log"
        proc = failed_run(tap, suffix, env, log)
        output = log.read_text()
        assert proc.returncode != 0, f"the run succeeded with PostgreSQL down:\n{output[-3000:]}"
        assert CONNECTION_ERROR.search(output), f"no connection error in the output:\n{output[-3000:]}"
        assert stored_state(tap, suffix, env) == complete
    finally:
        server.stop()
