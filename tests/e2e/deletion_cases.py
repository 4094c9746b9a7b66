"""(Collected by test_meltano.py: every meltano run shares the project's
.meltano/run folders, so all of them run in one module, one at a time.)

Deletions reach the warehouse: an entry deleted at the vendor, in a stream
read whole each sync, is marked deleted in PostgreSQL after the next sync
(``_sdc_deleted_at``, from the tap's ACTIVATE_VERSION messages and
target-postgres ``activate_version``), or removed with ``hard_delete``; the
rows of the other streams, full-table and incremental, stay as they were.
DuckDB (target-duckdb 0.8.0 ignores ACTIVATE_VERSION) keeps the row, and
the run succeeds."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import typing as t
import uuid

import pytest

from tests.demo import meltano, meltano_taps, schema_of, warehouse_counts
from tests.e2e.postgres_cases import needs_postgres


def _vendor_delete(sandboxes, vendor: str, stream: str, row_id: str) -> None:
    """The sandbox's admin delete action (tests/sandbox/core.py)."""
    sandboxes.admin(vendor, "delete", {"stream": stream, "id": row_id})


def _retire_state_row(sandboxes, vendor: str, stream: str, row_id: str) -> None:
    """BeyondTrust: a new state archive without the row (a representative logged out)."""
    table = stream.removeprefix("state_")
    sandboxes.admin(vendor, "advance", {"state_archive": True, "retire_state_rows": {table: [int(row_id)]}})


@dataclasses.dataclass(frozen=True)
class Deletion:
    stream: str  # the full-table stream an entry is deleted from
    other_full_table: str  # a full-table stream nothing is deleted from
    incremental: tuple[str, ...]  # incremental streams synced beside them
    key: str = "id"  # the stream's key column
    delete: t.Callable[[t.Any, str, str, str], None] = _vendor_delete

    @property
    def streams(self) -> tuple[str, ...]:
        return (self.stream, self.other_full_table, *self.incremental)


DELETIONS = {
    "tap-controlio": Deletion("rules", "departments", ("audit_log",)),
    "tap-sessionreports": Deletion("report_subscriptions", "defined_reports", ("reports", "report_rows")),
    "tap-beyondtrust": Deletion("state_representative", "state_queue", ("jump_items",), key="row_key",
                                delete=_retire_state_row),
}


def _env(sandboxes, tap: str, streams: tuple[str, ...], **extra: str) -> dict[str, str]:
    prefix = tap.upper().replace("-", "_")
    return {
        **sandboxes.env(),
        "MELTANO_ENVIRONMENT": "sandbox",
        f"{prefix}__SELECT": json.dumps([f"{s}.*" for s in streams]),
        **extra,
    }


def _rows(postgres, database: str, schema: str, table: str, key: str) -> dict[str, str]:
    """{key: _sdc_deleted_at} of the table's rows ('' when not deleted)."""
    return dict(postgres.sql(
        f"select \"{key}\"::text, coalesce(_sdc_deleted_at::text, '') from \"{schema}\".\"{table}\"", database))


def _count_live(postgres, database: str, schema: str, table: str) -> tuple[int, int]:
    """(rows, rows marked deleted)"""
    (total, deleted), = postgres.sql(
        f'select count(*), count(_sdc_deleted_at) from "{schema}"."{table}"', database)
    return int(total), int(deleted)


@needs_postgres
@pytest.mark.parametrize("tap", sorted(DELETIONS))
def test_an_entry_deleted_at_the_vendor_is_marked_deleted(sandboxes, postgres, tap, tmp_path):
    vendor = meltano_taps()[tap]
    case = DELETIONS[tap]
    schema = schema_of(tap)
    database = f"deletes_{schema}"
    postgres.sql(f"create database {database}", database="postgres")
    warehouse = tmp_path / "deletes.duckdb"
    env = _env(sandboxes, tap, case.streams, TARGET_POSTGRES_DATABASE=database,
               TARGET_DUCKDB_FILEPATH=str(warehouse), **{k: v for k, v in postgres.meltano_env().items()
                                                         if k != "TARGET_POSTGRES_DATABASE"})
    suffix = f"del-{uuid.uuid4().hex[:8]}"  # meltano's system database outlives the test

    def sync(*extra_args: str, target: str = "target-postgres", **more_env: str) -> None:
        meltano("run", *extra_args, "--state-id-suffix", suffix, tap, target, env={**env, **more_env}, quiet=True)

    def expected() -> dict[str, int]:
        counts = sandboxes.expected_counts()[vendor]
        return {s: counts[s] for s in case.streams}

    def loaded() -> dict[str, tuple[int, int]]:
        return {s: _count_live(postgres, database, schema, s) for s in case.streams}

    # 1. a first sync: every entry, none marked deleted
    sync("--full-refresh")
    sync("--full-refresh", target="target-duckdb")
    before = expected()
    assert all(before.values()), f"the {vendor} sandbox serves nothing in one of {case.streams}: {before}"
    assert loaded() == {s: (n, 0) for s, n in before.items()}
    first, second = sorted(_rows(postgres, database, schema, case.stream, case.key))[:2]

    # 2. an entry is deleted at the vendor; the next sync marks its row deleted, and only it
    case.delete(sandboxes, vendor, case.stream, first)
    after = expected()
    assert after[case.stream] == before[case.stream] - 1
    assert after[case.other_full_table] == before[case.other_full_table]
    sync()
    rows = _rows(postgres, database, schema, case.stream, case.key)
    assert len(rows) == before[case.stream]  # soft delete: the row stays
    assert {row_id for row_id, deleted in rows.items() if deleted} == {first}
    others = {s: n for s, n in after.items() if s != case.stream}
    assert {s: v for s, v in loaded().items() if s != case.stream} == {s: (n, 0) for s, n in others.items()}

    # ... and in DuckDB, where target-duckdb ignores ACTIVATE_VERSION, the row simply stays
    sync(target="target-duckdb")
    duck = warehouse_counts(warehouse)
    assert duck[(schema, case.stream)] == before[case.stream]
    assert _duckdb_ids(warehouse, schema, case.stream, case.key) >= {first}

    # 3. with hard_delete, the rows of deleted entries are removed instead
    case.delete(sandboxes, vendor, case.stream, second)
    sync(TARGET_POSTGRES_HARD_DELETE="true")
    rows = _rows(postgres, database, schema, case.stream, case.key)
    assert first not in rows and second not in rows
    assert len(rows) == before[case.stream] - 2 == expected()[case.stream]
    assert not any(rows.values())
    others = {s: n for s, n in expected().items() if s != case.stream}
    assert {s: v for s, v in loaded().items() if s != case.stream} == {s: (n, 0) for s, n in others.items()}


def _duckdb_ids(path, schema: str, table: str, key: str) -> set[str]:
    import duckdb

    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        return {str(r[0]) for r in con.execute(f'select "{key}" from "{schema}"."{table}"').fetchall()}
