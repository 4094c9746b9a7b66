"""target-duckdb-fastpath: the same rows, keys, tables and STATE as target-duckdb 0.8.0.

FastDbSync replaces two per-record methods of target-duckdb's DbSync; each is
compared with target-duckdb's own on records built to reach every branch of
its rules, and the whole loader is compared with target-duckdb's own `main`
on every tap's sandbox output: the same tables, the same rows, the same
STATE messages on stdout. With ``row_group_size`` the file is attached with
that many rows per row group: the same tables and rows, in row groups no
larger. With ``release_memory_mb`` DuckDB gives back the blocks it holds
after a flush: the same tables and rows, and what it holds after the load
is measured in the process (``duckdb_memory()``)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import subprocess
import sys
import typing as t
from pathlib import Path

import duckdb
import pytest
import target_duckdb
from target_duckdb.db_sync import DbSync
from target_duckdb_fastpath import (
    ORIGINAL_CONNECT,
    FastDbSync,
    duckdb_connect,
    held_bytes,
    install,
    release_memory,
)

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


def test_install_swaps_only_the_class_and_the_connection(monkeypatch):
    monkeypatch.setattr(target_duckdb, "DbSync", DbSync)
    monkeypatch.setattr(target_duckdb, "duckdb_connect", ORIGINAL_CONNECT)
    assert install() is True
    assert target_duckdb.DbSync is FastDbSync
    assert target_duckdb.duckdb_connect is duckdb_connect
    monkeypatch.setattr("target_duckdb_fastpath.version", lambda _: "0.9.0")
    monkeypatch.setattr(target_duckdb, "DbSync", DbSync)
    monkeypatch.setattr(target_duckdb, "duckdb_connect", ORIGINAL_CONNECT)
    assert install() is False
    assert target_duckdb.DbSync is DbSync
    assert target_duckdb.duckdb_connect is ORIGINAL_CONNECT


def test_row_group_size_attaches_the_file_as_target_duckdb_names_it(tmp_path):
    """The file is the default catalog under its stem (target-duckdb's catalog
    name), with the settings applied and spills beside the file."""
    path = tmp_path / "my warehouse.duckdb"
    config = {"filepath": str(path), "default_target_schema": "raw", "row_group_size": 4096,
              "settings": {"threads": 1, "memory_limit": "64MB"}}
    with contextlib.closing(duckdb_connect(config)) as con:
        assert con.execute("select current_database()").fetchone() == ("my warehouse",)
        assert con.execute("select current_setting('threads'), current_setting('temp_directory')").fetchone() == (
            1, f"{path}.tmp")
        assert con.execute("select current_setting('memory_limit')").fetchone()[0].endswith("MiB")
        con.execute("create table t as select range as i from range(10000)")
        groups = con.execute("select distinct row_group_id from pragma_storage_info('t')").fetchall()
        assert len(groups) == 3  # 10,000 rows in groups of 4,096
    # a plain connection reads it
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        assert con.execute("select count(*), sum(i) from t").fetchone() == (10000, 49995000)
    # without the setting, target-duckdb's own connection: DuckDB's row groups
    config = {"filepath": str(tmp_path / "plain.duckdb"), "default_target_schema": "raw"}
    with contextlib.closing(duckdb_connect(config)) as con:
        con.execute("create table t as select range as i from range(10000)")
        assert len(con.execute("select distinct row_group_id from pragma_storage_info('t')").fetchall()) == 1


@pytest.mark.parametrize(("config", "message"), [
    ({"row_group_size": 10000}, "row_group_size must be a positive multiple of 2048 rows, not 10000"),
    ({"row_group_size": 0}, "row_group_size must be a positive multiple of 2048 rows, not 0"),
    ({"row_group_size": "4096"}, "row_group_size must be a positive multiple of 2048 rows, not '4096'"),
    ({"row_group_size": 4096, "filepath": None}, "Either 'path' or 'filepath' must be defined"),
    ({"row_group_size": 4096, "default_target_schema": None}, "default_target_schema"),
    ({"release_memory_mb": 0}, "release_memory_mb must be a positive number of MB, not 0"),
    ({"release_memory_mb": -8}, "release_memory_mb must be a positive number of MB, not -8"),
    ({"release_memory_mb": "32"}, "release_memory_mb must be a positive number of MB, not '32'"),
    ({"release_memory_mb": True}, "release_memory_mb must be a positive number of MB, not True"),
    ({"release_memory_mb": 32.5, "row_group_size": 4096}, "release_memory_mb must be a positive number of MB"),
])
def test_a_bad_fast_path_setting_fails_before_the_file_is_opened(config, message, tmp_path):
    path = tmp_path / "w.duckdb"
    config = {"filepath": str(path), "default_target_schema": "raw", **config}
    config = {key: value for key, value in config.items() if value is not None}
    (tmp_path / "c.json").write_text(json.dumps(config))
    proc = subprocess.run([str(BIN / "target-duckdb-fastpath"), "--config", str(tmp_path / "c.json")], input="",
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "Invalid configuration" in proc.stderr and message in proc.stderr, proc.stderr
    assert not path.exists()


@pytest.mark.parametrize("database", [{"filepath": "md:warehouse?motherduck_token=secret-1"},
                                      {"filepath": "md:warehouse", "token": "secret-1"}])
def test_row_group_size_leaves_a_motherduck_database_to_target_duckdb(database, monkeypatch, caplog):
    """row_group_size is an option of a local file: with a MotherDuck path the
    loader connects as target-duckdb does, with a warning that names no path."""
    connected = []
    monkeypatch.setattr("target_duckdb_fastpath.ORIGINAL_CONNECT", lambda config: connected.append(config) or "con")
    config = {**database, "default_target_schema": "raw", "row_group_size": 4096}
    with caplog.at_level("WARNING"):
        assert duckdb_connect(config) == "con"
    assert connected == [config]
    assert "row_group_size applies to a local DuckDB file" in caplog.text
    assert "secret" not in caplog.text and "md:" not in caplog.text


def _load(command: list[str], messages: str, warehouse: Path, tmp: Path, **settings: t.Any) -> list[str]:
    config = {"filepath": str(warehouse), "default_target_schema": "raw", "batch_size_rows": BATCH_ROWS,
              "settings": {"threads": 1}, **settings}
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
    and STATE lines; the same with row_group_size 2048 and DuckDB's memory
    released after every flush (release_memory_mb 1), many tables at once."""
    messages, counts = tap_output(tap, sandbox_factory, tmp_path)
    own_state = _load([str(BIN / "python"), "-c", "import target_duckdb; target_duckdb.main()"],
                      messages, tmp_path / "own.duckdb", tmp_path)
    fast_state = _load([str(BIN / "target-duckdb-fastpath")], messages, tmp_path / "fast.duckdb", tmp_path)
    grouped_state = _load([str(BIN / "target-duckdb-fastpath")], messages, tmp_path / "grouped.duckdb", tmp_path,
                          row_group_size=2048, release_memory_mb=1)
    assert fast_state == own_state and own_state, "the STATE lines differ"
    assert grouped_state == own_state, "the STATE lines differ"

    own = _tables(tmp_path / "own.duckdb")
    assert_same_tables(own, _tables(tmp_path / "fast.duckdb"), counts)
    assert_same_tables(own, _tables(tmp_path / "grouped.duckdb"), counts)


def test_row_groups_bound_what_an_upsert_rewrites(tmp_path):
    """5,000 records in 1,000-row flushes, then the same keys again with new
    values: with row_group_size 2048 the table holds row groups of at most
    2,048 rows and each key once, with the values of the second load, as
    target-duckdb's own load of the same messages; no WAL is left. The same
    with DuckDB's memory released after every flush."""
    schema = {"type": "object", "properties": {"id": {"type": ["integer"]}, "name": {"type": ["null", "string"]},
                                               "tags": {"type": ["null", "array"], "items": {"type": "string"}}}}

    def messages(tag: str) -> str:
        lines = [{"type": "SCHEMA", "stream": "things", "schema": schema, "key_properties": ["id"]}]
        lines += [{"type": "RECORD", "stream": "things", "record": {"id": i, "name": f"{tag}{i}", "tags": [tag]}}
                  for i in range(5000)]
        lines.append({"type": "STATE", "value": {"loaded": tag}})
        return "\n".join(json.dumps(line) for line in lines) + "\n"

    states = {}
    for name, command, settings in [
        ("own", [str(BIN / "python"), "-c", "import target_duckdb; target_duckdb.main()"], {}),
        ("grouped", [str(BIN / "target-duckdb-fastpath")],
         {"row_group_size": 2048, "settings": {"threads": 1}}),
        ("released", [str(BIN / "target-duckdb-fastpath")],
         {"release_memory_mb": 1, "settings": {"threads": 1, "memory_limit": "2GB"}}),
    ]:
        warehouse = tmp_path / f"{name}.duckdb"
        states[name] = [
            run_loader(command, {"filepath": str(warehouse), "default_target_schema": "raw", "batch_size_rows": 1000,
                                 **settings}, messages(tag), tmp_path, f"{name}-{tag}")
            for tag in ("first", "second")]
        assert not Path(f"{warehouse}.wal").exists()
    assert states["grouped"] == states["released"] == states["own"] == [
        ['{"loaded": "first"}'], ['{"loaded": "second"}']]
    own, grouped = _tables(tmp_path / "own.duckdb"), _tables(tmp_path / "grouped.duckdb")
    assert grouped == own == _tables(tmp_path / "released.duckdb")
    assert own["things"][1][0] == (0, "second0", '["second"]') and len(own["things"][1]) == 5000
    with contextlib.closing(duckdb.connect(str(tmp_path / "grouped.duckdb"), read_only=True)) as con:
        sizes = [row[0] for row in con.execute(
            "select max(count) from pragma_storage_info('raw.things') group by row_group_id").fetchall()]
        assert len(sizes) >= 3 and max(sizes) <= 2048, sizes


def _limit(con: duckdb.DuckDBPyConnection) -> str:
    return str(con.execute("select current_setting('memory_limit')").fetchone()[0])


def test_release_memory_drops_the_blocks_and_restores_the_limit(tmp_path):
    """DuckDB keeps the blocks of a table it wrote, after a checkpoint too;
    release_memory makes it drop them (above its threshold only) and sets the
    memory limit back: the config's, or DuckDB's default as DuckDB shows it
    (to 0.1 GiB), the same after every release."""
    with contextlib.closing(duckdb.connect(":memory:")) as fresh:
        fresh.execute(f"SET memory_limit = '{_limit(fresh)}'")
        default_limit = _limit(fresh)
        fresh.execute("SET memory_limit = '2GB'")
        two_gb = _limit(fresh)
    for configured, expected in [(None, default_limit), ("2GB", two_gb)]:
        path = tmp_path / f"{configured}.duckdb"
        settings = {"threads": 1} if configured is None else {"threads": 1, "memory_limit": configured}
        with contextlib.closing(duckdb_connect({"filepath": str(path), "default_target_schema": "raw",
                                                "settings": settings})) as con:
            con.execute("create table t (i bigint primary key, h varchar)")
            for start in range(0, 300000, 10000):  # appended as a loader does, then written to the file
                con.execute("insert into t select range, md5(range::varchar) from range(?, ?)", [start, start + 10000])
            con.execute("checkpoint")
            held, before = held_bytes(con), _limit(con)
            assert held > 4 * 2**20, held
            assert release_memory(con, held // 2**20 + 1, configured) is False  # under the threshold
            assert held_bytes(con) == held and _limit(con) == before
            for _ in range(3):
                assert release_memory(con, 2, configured) is True
                assert held_bytes(con) < 2**20, held_bytes(con)
                assert _limit(con) == expected
                # the limit is DuckDB's again: a query needing more than 1 MB runs
                assert con.execute("select count(*), count(distinct h) from t").fetchone() == (300000, 300000)


def test_what_cannot_be_released_stays_and_the_load_goes_on():
    """Blocks that are in no file and may not be spilled (no temporary
    directory) cannot be evicted: DuckDB refuses the 1 MB limit, the limit
    stays as it was, the data stays whole."""
    with contextlib.closing(duckdb.connect(":memory:")) as con:
        con.execute("SET temp_directory = ''")
        con.execute("SET memory_limit = '4GB'")
        con.execute("create table t as select range as i, md5(range::varchar) as h from range(300000)")
        held = held_bytes(con)
        before = _limit(con)
        assert release_memory(con, 1, "4GB") is True
        assert held_bytes(con) >= held // 2 and _limit(con) == before
        assert con.execute("select count(distinct h) from t").fetchone() == (300000,)


@pytest.mark.parametrize("threshold", [None, 2])
def test_the_loader_releases_what_duckdb_holds_after_a_flush(threshold, tmp_path, capsys):
    """60,000 records in 5,000-row flushes through the loader in this process:
    without release_memory_mb DuckDB still holds the table's blocks at the
    end, with 2 MB it holds no more than that; the same rows either way."""
    props = {name: {"type": ["null", "string"]} for name in ("a", "b", "c")}
    schema = {"type": "object", "properties": {"id": {"type": ["integer"]}, **props}}
    lines = [json.dumps({"type": "SCHEMA", "stream": "things", "schema": schema, "key_properties": ["id"]})]
    lines += [json.dumps({"type": "RECORD", "stream": "things", "record": {
        "id": i, **{name: hashlib.md5(f"{name}{i}".encode()).hexdigest() for name in props}}}) for i in range(60000)]
    config = {"filepath": str(tmp_path / "w.duckdb"), "default_target_schema": "raw", "batch_size_rows": 5000,
              "settings": {"threads": 1}, "temp_dir": str(tmp_path)}
    if threshold:
        config["release_memory_mb"] = threshold
    install()
    with contextlib.closing(target_duckdb.duckdb_connect(config)) as con:
        target_duckdb.persist_lines(con, config, lines)
        held = held_bytes(con)
        assert con.execute("select count(*), max(id) from raw.things").fetchone() == (60000, 59999)
    if threshold:
        assert held <= threshold * 2**20, held
    else:
        assert held > 4 * 2**20, held
    assert capsys.readouterr().out == ""  # no STATE in the messages, none emitted
