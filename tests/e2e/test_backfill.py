"""A backfill under its own state id, for every tap of meltano.yml:

1. a regular `meltano run <tap> target-duckdb` (state id
   `sandbox:<tap>-to-target-duckdb`) loads the last 30 days;
2. a backfill, `<TAP>_START_DATE=<first day> <TAP>_END_DATE=<last day> meltano
   run --state-id-suffix backfill <tap> target-duckdb`, into a DuckDB file of
   its own, loads a past period: every row of the period the regular run
   loaded, its last day included (an ISO date end_date ends the period at the
   midnight after that day), nothing far outside it, and nothing from that
   midnight on where the tap's end bound is exact (exactly the period's rows
   where both bounds are);
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
from dataclasses import dataclass

import pytest

from tests.demo import meltano, meltano_taps, schema_of, warehouse_counts
from tests.e2e.conftest import ENVIRONMENT, meltano_output

pytestmark = pytest.mark.e2e

TAPS = meltano_taps()
SUFFIX = "backfill"
#: Small data sets, yet rows closer than the last-day check's window (22 hours)
#: at any time of day the tests run: ActivTrak a row every 1.2 h, Ekran 2.4 h,
#: Controlio a slot of rows every 7.2 h, BeyondTrust a session every 6 h, Fudo
#: a pair of reports every 10.8 h (100 pairs over its 45 days; at 80 it was
#: every 27 h, and a run at the wrong hour found no report on the last day).
SCALES = {"activtrak": 600, "ekran": 300, "controlio": 300, "beyondtrust": 120, "sessionreports": 200}
#: Per tap: its main table and the time column the tap's start_date/end_date bound.
MAIN = {
    "tap-activtrak": ("activity_log", "date"),
    "tap-ekran": ("sessions", "logindate"),
    "tap-controlio": ("detailed_activities", "start_time"),
    "tap-sessionreports": ("reports", "modified_at"),
    "tap-beyondtrust": ("support_sessions", "end_time"),
}
#: The taps whose main table holds nothing from end_date's instant on (the
#: others may read a whole day or a session that began before it).
EXACT_END = {"tap-activtrak", "tap-ekran", "tap-sessionreports"}
#: How far a row may lie outside the period, whatever the tap's bound is
#: (whole days, sessions that began before start and ended in it...).
SLACK = dt.timedelta(days=2)
#: Rows of the period's last day, this far from its midnights, are synced by every tap.
DAY_MARGIN = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Period:
    """The backfill period: days ``first`` to ``last``, both synced, inside every
    sandbox's data and inside the regular run's default 30 days."""

    first: dt.date
    last: dt.date

    @property
    def start(self) -> dt.datetime:
        """Its first instant (start_date's midnight), as the warehouse's naive UTC columns hold it."""
        return naive(self.first)

    @property
    def end(self) -> dt.datetime:
        """Its exclusive end: the midnight after its last day."""
        return naive(self.last + dt.timedelta(days=1))


@pytest.fixture(scope="module")
def sandbox_args() -> tuple[str, ...]:
    """The sandbox of these tests serves the small data sets of SCALES."""
    return tuple(arg for vendor, scale in SCALES.items() for arg in ("--set", f"{vendor}.scale={scale}"))


@pytest.fixture(scope="module")
def period(sandboxes) -> Period:
    """Days 20 to 11 before the day the sandbox started (its data ends then)."""
    today = dt.datetime.now(dt.timezone.utc).date()
    return Period(first=today - dt.timedelta(days=20), last=today - dt.timedelta(days=11))


def test_every_tap_has_a_main_table_here():
    assert set(MAIN) == set(TAPS)
    assert set(EXACT_END) <= set(TAPS)


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
def test_backfill_reads_its_period_under_its_own_state_id(sandboxes, period, tap, tmp_path):
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

    # 2. the backfill, into its own file: both bounds ISO dates, the last day synced
    prefix = tap.upper().replace("-", "_")
    backfill_env = {**env, "TARGET_DUCKDB_FILEPATH": str(backfill_db),
                    f"{prefix}_START_DATE": period.first.isoformat(), f"{prefix}_END_DATE": period.last.isoformat()}
    meltano("run", "--state-id-suffix", SUFFIX, tap, "target-duckdb", env=backfill_env, quiet=True)
    loaded = keys_where(backfill_db, schema, table)
    assert loaded, f"the backfill loaded no {table}"
    # nothing far outside the period; with an exact end bound, nothing from the midnight after its last day on
    end_bound = period.end if tap in EXACT_END else period.end + SLACK
    outside = query(backfill_db, f'select count(*) from "{schema}"."{table}" where "{column}" < ? or "{column}" >= ?',
                    period.start - SLACK, end_bound)[0][0]
    assert outside == 0, f"{outside} {table} outside [{period.start - SLACK}, {end_bound})"
    # every row of the period the regular run loaded (well inside its bounds)
    inside = keys_where(regular_db, schema, table, f'"{column}" >= ? and "{column}" < ?',
                        period.start + SLACK, period.end - SLACK)
    assert inside and inside <= loaded
    # the last day (end_date's day) is synced: its rows the regular run loaded are all there
    last_day = keys_where(regular_db, schema, table, f'"{column}" >= ? and "{column}" < ?',
                          naive(period.last) + DAY_MARGIN, period.end - DAY_MARGIN)
    assert last_day, f"no {table} on {period.last} to check end_date's day with"
    assert last_day <= loaded, f"{len(last_day - loaded)} of {len(last_day)} {table} of end_date's day missing"
    assert len(loaded) < expected[table], "the backfill read more than its period"
    if tap == "tap-sessionreports":
        # the bounds are exact: modified_at in [start_date's midnight, the
        # midnight after end_date's day), and the rows of exactly the ready
        # reports among them
        in_period = "modified_at >= ? and modified_at < ?"
        assert loaded == keys_where(regular_db, schema, table, in_period, period.start, period.end)
        ready = {report_id for (report_id,) in keys_where(
            regular_db, schema, table, f"{in_period} and is_ready", period.start, period.end)}
        rows = keys_where(regular_db, schema, "report_rows")
        assert keys_where(backfill_db, schema, "report_rows") == {row for row in rows if row[0] in ready}
        # definitions and subscriptions: read whole up to end_date
        for lists in ("defined_reports", "report_subscriptions"):
            assert keys_where(backfill_db, schema, lists) == keys_where(
                regular_db, schema, lists, "modified_at < ?", period.end)

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
