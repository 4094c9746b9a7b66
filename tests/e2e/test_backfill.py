"""A backfill under its own state id, for every tap of meltano.yml:

1. a regular `meltano run <tap> target-duckdb` (state id
   `sandbox:<tap>-to-target-duckdb`) loads the last 30 days;
2. a backfill, `<TAP>_START_DATE=... <TAP>_END_DATE=... meltano run
   --state-id-suffix backfill <tap> target-duckdb`, into a DuckDB file of its
   own, loads a past period: every row of the period the regular run loaded,
   nothing far outside it (exactly the period's rows where the tap's bounds
   are exact);
3. the regular state is byte for byte what it was, the backfill has its own;
4. after time passes in the sandbox, the next regular run continues from the
   regular state: the warehouse holds exactly what the sandbox serves, and the
   run touched only a part of the main table (rows it wrote carry a newer
   `_sdc_batched_at`), not the whole history again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess

import pytest

from tests.demo import MELTANO, ROOT, Sandboxes, meltano, meltano_taps, schema_of, warehouse_counts

pytestmark = pytest.mark.e2e

TAPS = meltano_taps()
ENVIRONMENT = "sandbox"
SUFFIX = "backfill"
#: Small data sets: enough rows per day for every period check.
SCALES = {"activtrak": 600, "ekran": 300, "controlio": 300, "beyondtrust": 120, "sessionreports": 80}
#: Per tap: its main table and the time column the tap's start_date/end_date bound.
MAIN = {
    "tap-activtrak": ("activity_log", "date"),
    "tap-ekran": ("sessions", "logindate"),
    "tap-controlio": ("detailed_activities", "start_time"),
    "tap-sessionreports": ("reports", "modified_at"),
    "tap-beyondtrust": ("support_sessions", "end_time"),
}
#: The backfill period: [today - 20 days, today - 10 days), inside every
#: sandbox's data and inside the regular run's default 30 days.
TODAY = dt.datetime.now(dt.timezone.utc).date()
START = TODAY - dt.timedelta(days=20)
END = TODAY - dt.timedelta(days=10)
#: How far a row may lie outside the period, whatever the tap's bound is
#: (inclusive end day, sessions that began before start and ended in it...).
SLACK = dt.timedelta(days=2)


@pytest.fixture(scope="module", autouse=True)
def own_meltano_dir(tmp_path_factory):
    """The plugins, run folders and state of these tests live apart from the
    project's own .meltano (the demo's), so that neither disturbs the other."""
    previous = os.environ.get("MELTANO_SYS_DIR_ROOT")
    os.environ["MELTANO_SYS_DIR_ROOT"] = str(tmp_path_factory.mktemp("meltano"))
    yield
    if previous is None:
        del os.environ["MELTANO_SYS_DIR_ROOT"]
    else:
        os.environ["MELTANO_SYS_DIR_ROOT"] = previous


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory):
    scales = [arg for vendor, scale in SCALES.items() for arg in ("--set", f"{vendor}.scale={scale}")]
    with Sandboxes(TAPS.values(), tmp_path_factory.mktemp("sandbox"), *scales) as running:
        meltano("install", env={**running.env(), "MELTANO_ENVIRONMENT": ENVIRONMENT}, quiet=True)
        yield running


def test_every_tap_has_a_main_table_here():
    assert set(MAIN) == set(TAPS)


def meltano_output(*args: str, env: dict) -> str:
    proc = subprocess.run([MELTANO, *args], cwd=ROOT, env={**os.environ, **env}, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, f"meltano {' '.join(args)}:\n{(proc.stdout + proc.stderr)[-3000:]}"
    return proc.stdout


def query(path, sql: str, *params) -> list[tuple]:
    import duckdb

    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        return con.execute(sql, list(params)).fetchall()


def primary_key(path, schema: str, table: str) -> list[str]:
    (columns,) = query(path, "select constraint_column_names from duckdb_constraints() "
                             "where constraint_type = 'PRIMARY KEY' and schema_name = ? and table_name = ?",
                       schema, table)[0]
    return list(columns)


def keys_where(path, schema: str, table: str, where: str = "true", *params) -> set[tuple]:
    columns = ", ".join(f'"{c}"' for c in primary_key(path, schema, table))
    return set(query(path, f'select {columns} from "{schema}"."{table}" where {where}', *params))


def naive(day: dt.date) -> dt.datetime:
    """A day's midnight as the warehouse's TIMESTAMP columns hold UTC times."""
    return dt.datetime.combine(day, dt.time())


@pytest.mark.parametrize("tap", sorted(TAPS))
def test_backfill_reads_its_period_under_its_own_state_id(sandboxes, tap, tmp_path):
    vendor = TAPS[tap]
    schema = schema_of(tap)
    table, column = MAIN[tap]
    regular_db, backfill_db = tmp_path / "regular.duckdb", tmp_path / "backfill.duckdb"
    env = {**sandboxes.env(), "MELTANO_ENVIRONMENT": ENVIRONMENT, "TARGET_DUCKDB_ADD_METADATA_COLUMNS": "true"}
    regular_env = {**env, "TARGET_DUCKDB_FILEPATH": str(regular_db)}
    state_id = f"{ENVIRONMENT}:{tap}-to-target-duckdb"

    # 1. the regular run
    meltano("run", tap, "target-duckdb", env=regular_env, quiet=True)
    expected = sandboxes.expected_counts()[vendor]
    assert warehouse_counts(regular_db).get((schema, table)) == expected[table]
    regular_state = meltano_output("state", "get", state_id, env=env)
    assert '"bookmarks"' in regular_state

    # 2. the backfill, into its own file
    prefix = tap.upper().replace("-", "_")
    backfill_env = {**env, "TARGET_DUCKDB_FILEPATH": str(backfill_db),
                    f"{prefix}_START_DATE": START.isoformat(), f"{prefix}_END_DATE": END.isoformat()}
    meltano("run", "--state-id-suffix", SUFFIX, tap, "target-duckdb", env=backfill_env, quiet=True)
    loaded = keys_where(backfill_db, schema, table)
    assert loaded, f"the backfill loaded no {table}"
    # nothing far outside the period
    outside = query(backfill_db, f'select count(*) from "{schema}"."{table}" where "{column}" < ? or "{column}" >= ?',
                    naive(START) - SLACK, naive(END) + SLACK)[0][0]
    assert outside == 0
    # every row of the period the regular run loaded (well inside its bounds)
    inside = keys_where(regular_db, schema, table, f'"{column}" >= ? and "{column}" < ?',
                        naive(START) + SLACK, naive(END) - SLACK)
    assert inside and inside <= loaded
    assert len(loaded) < expected[table], "the backfill read more than its period"
    if tap == "tap-sessionreports":
        # the bounds are exact: modified_at in [start_date, end_date), and the
        # rows of exactly the ready reports among them
        period = keys_where(regular_db, schema, table, "modified_at >= ? and modified_at < ?", naive(START), naive(END))
        assert loaded == period
        ready = {report_id for (report_id,) in keys_where(
            regular_db, schema, table, "modified_at >= ? and modified_at < ? and is_ready", naive(START), naive(END))}
        rows = keys_where(regular_db, schema, "report_rows")
        assert keys_where(backfill_db, schema, "report_rows") == {row for row in rows if row[0] in ready}
        # definitions and subscriptions: read whole up to end_date
        for lists in ("defined_reports", "report_subscriptions"):
            assert keys_where(backfill_db, schema, lists) == keys_where(
                regular_db, schema, lists, "modified_at < ?", naive(END))

    # 3. the regular state is untouched; the backfill has its own
    assert meltano_output("state", "get", state_id, env=env) == regular_state
    backfill_state = meltano_output("state", "get", f"{state_id}:{SUFFIX}", env=env)
    assert '"bookmarks"' in backfill_state and json.loads(backfill_state) != json.loads(regular_state)

    # 4. time passes; the next regular run continues from the regular state
    before = query(regular_db, f'select max(_sdc_batched_at) from "{schema}"."{table}"')[0][0]
    changes = sandboxes.admin(vendor, "advance", {})
    meltano("run", tap, "target-duckdb", env=regular_env, quiet=True)
    after = sandboxes.expected_counts()[vendor]
    total = warehouse_counts(regular_db)[(schema, table)]
    assert total == after[table]
    touched = keys_where(regular_db, schema, table, "_sdc_batched_at > ?", before)
    assert 0 < len(touched) < total, f"the run after the backfill touched {len(touched)} of {total} {table}"
    if tap == "tap-sessionreports":
        # exactly the new reports, those that finished generating (modified_at
        # moved, or not: re-checked by id) and the ones at the old bookmark
        changed = {(i,) for key in ("new_reports", "finished_reports", "finished_in_place_reports")
                   for i in changes[key]}
        bookmark = json.loads(regular_state)["singer_state"]["bookmarks"]["reports"]["replication_key_value"]
        at_bookmark = keys_where(regular_db, schema, table, "modified_at = ?",
                                 dt.datetime.fromisoformat(bookmark).replace(tzinfo=None))
        assert changed <= touched <= changed | at_bookmark
