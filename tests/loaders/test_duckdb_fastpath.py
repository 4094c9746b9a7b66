"""target-duckdb-fastpath: the same rows, keys, tables and STATE as target-duckdb 0.8.0.

FastDbSync replaces two per-record methods of target-duckdb's DbSync; each is
compared with target-duckdb's own on records built to reach every branch of
its rules, and the whole loader is compared with target-duckdb's own `main`
on every tap's sandbox output: the same tables, the same rows, the same
STATE messages on stdout."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import duckdb
import pytest
import target_duckdb
from target_duckdb.db_sync import DbSync
from target_duckdb_fastpath import FastDbSync, install

from tests.loaders.common import BATCH_ROWS, TAPS, assert_same_tables, run_loader, tap_output

BIN = Path(sys.executable).parent

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": ["integer"]},
        "site": {"type": ["null", "string"]},
        "name": {"type": ["null", "string"]},
        "count": {"type": ["null", "integer"]},
        "ratio": {"type": ["null", "number"]},
        "active": {"type": ["null", "boolean"]},
        "at": {"type": ["null", "string"], "format": "date-time"},
        "tags": {"type": ["null", "array"], "items": {"type": "string"}},
        "owner": {"type": ["null", "object"], "properties": {"id": {"type": ["integer"]}}},
        "loose": {"type": ["null", "object", "array"]},
        "either": {"anyOf": [{"type": "null"}, {"type": "string"}]},
    },
}
VALUES = {
    "site": ["eu", "", None],
    "name": ["a", "", "0", None, "ü \"quoted\", comma"],
    "count": [0, 7, -1, None],
    "ratio": [0.0, 1.5, None],
    "active": [True, False, None],
    "at": ["2026-01-02T03:04:05+00:00", None],
    "tags": [[], ["x", "y"], None],
    "owner": [{}, {"id": 3}, None],
    "loose": [None, "text", 0, [], {}, [1, {"a": None}], {"b": [2]}],
    "either": ["s", "", None],
}


def records() -> list[dict]:
    """Records reaching each value of each column, with columns missing, and a
    property the schema does not have (target-duckdb drops it)."""
    out = []
    width = max(len(v) for v in VALUES.values())
    for i in range(width * 2):
        record = {"id": i}
        for n, (name, values) in enumerate(VALUES.items()):
            if (i + n) % 5 != 4:  # every column is missing from some records
                record[name] = values[(i + n) % len(values)]
        if i % 3 == 0:
            record["undeclared"] = {"z": i}
        out.append(record)
    return out


def syncs(keys: list[str], max_level: int = 0) -> tuple[DbSync, FastDbSync]:
    message = {"type": "SCHEMA", "stream": "things", "schema": SCHEMA, "key_properties": keys}
    config = {"default_target_schema": "s", "data_flattening_max_level": max_level}
    connection = duckdb.connect(":memory:")
    return (DbSync(connection, config, json.loads(json.dumps(message))),
            FastDbSync(connection, config, json.loads(json.dumps(message))))


@pytest.mark.parametrize("keys", [["id"], ["id", "site"], ["id", "loose"], ["id", "owner"], []])
def test_primary_key_strings_are_target_duckdbs(keys):
    own, fast = syncs(keys)
    for record in records():
        if all(key in record for key in keys):
            assert fast.record_primary_key_string(record) == own.record_primary_key_string(record), record


def test_a_missing_key_fails_as_in_target_duckdb():
    own, fast = syncs(["id", "site"])
    record = {"id": 1}
    with pytest.raises(KeyError) as raised:
        own.record_primary_key_string(record)
    with pytest.raises(KeyError) as fast_raised:
        fast.record_primary_key_string(record)
    assert fast_raised.value.args == raised.value.args == ("site",)


@pytest.mark.parametrize("max_level", [0, 1])
def test_rows_are_target_duckdbs(max_level):
    own, fast = syncs(["id"], max_level)
    assert fast.flatten_schema == own.flatten_schema
    rows = [fast.record_to_flattened(record) for record in records()]
    assert rows == [own.record_to_flattened(record) for record in records()]
    assert len(rows) == 14 and all(len(row) == len(own.flatten_schema) for row in rows)
    if max_level == 0:
        # the JSON rule: `loose` (null/object/array) is JSON even as a string or 0
        loose = list(own.flatten_schema).index("loose")
        assert {row[loose] for row in rows} >= {'"text"', "0", "[]", "{}", "null", None}


def test_install_swaps_only_the_class_target_duckdb_builds(monkeypatch):
    monkeypatch.setattr(target_duckdb, "DbSync", DbSync)
    assert install() is True
    assert target_duckdb.DbSync is FastDbSync
    monkeypatch.setattr("target_duckdb_fastpath.version", lambda _: "0.9.0")
    monkeypatch.setattr(target_duckdb, "DbSync", DbSync)
    assert install() is False
    assert target_duckdb.DbSync is DbSync


def _load(command: list[str], messages: str, warehouse: Path, tmp: Path) -> list[str]:
    config = {"filepath": str(warehouse), "default_target_schema": "raw", "batch_size_rows": BATCH_ROWS,
              "settings": {"threads": 1}}
    return run_loader(command, config, messages, tmp, warehouse.stem)


def _tables(warehouse: Path) -> dict[str, tuple[list, list]]:
    with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
        names = [row[0] for row in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' order by 1").fetchall()]
        return {name: (con.execute(f'describe raw."{name}"').fetchall(),
                       con.execute(f'select * from raw."{name}" order by all').fetchall()) for name in names}


@pytest.mark.parametrize("tap", sorted(TAPS))
def test_a_tap_loads_as_with_target_duckdb(tap, sandbox_factory, tmp_path):
    """Every stream of the tap's sandbox run, through both loaders in small
    batches (each flush an upsert into rows already loaded): equal tables, rows
    and STATE lines."""
    messages, counts = tap_output(tap, sandbox_factory, tmp_path)
    own_state = _load([str(BIN / "python"), "-c", "import target_duckdb; target_duckdb.main()"],
                      messages, tmp_path / "own.duckdb", tmp_path)
    fast_state = _load([str(BIN / "target-duckdb-fastpath")], messages, tmp_path / "fast.duckdb", tmp_path)
    assert fast_state == own_state and own_state, "the STATE lines differ"

    own, fast = _tables(tmp_path / "own.duckdb"), _tables(tmp_path / "fast.duckdb")
    assert_same_tables(own, fast, counts)
