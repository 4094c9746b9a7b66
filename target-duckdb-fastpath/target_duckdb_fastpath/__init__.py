"""target-duckdb 0.8.0 with a faster per-record path.

target-duckdb spends most of its CPU in two methods of its ``DbSync``, called
for every RECORD: ``record_primary_key_string`` (the key that de-duplicates a
batch) and ``record_to_flattened`` (the CSV row). Both flatten the whole
record through a generic, recursive ``flatten_record``, the first only to
read the key columns, and ask an ``isinstance`` of ``collections.abc`` and a
schema lookup for every value. With ``data_flattening_max_level`` 0 (the
loader's default, and this project's) flattening is the identity on keys, so
:class:`FastDbSync` reads the key columns and the schema's columns straight
from the record, with the set of JSON-typed columns computed once per schema.
Everything else (tables, types, COPY, UPDATE and INSERT, STATE, logging) is
target-duckdb's own. Any other flattening level, and any other target-duckdb
version than the one this was checked against, runs target-duckdb's own code.

With the setting ``row_group_size``, :func:`duckdb_connect` opens the file
with that many rows per DuckDB row group instead of DuckDB's 122,880 (an
``ATTACH`` option, not stored in the file). DuckDB appends every flush to the
table's last row group and rewrites that whole row group at each checkpoint,
so with the default the loader's memory at a checkpoint grows with the
table up to 122,880 rows; with smaller row groups it grows up to one of
them.

With the setting ``release_memory_mb``, after each flush in which DuckDB
holds more than that many MB (``duckdb_memory()``), :func:`release_memory`
lowers its ``memory_limit`` for a moment and restores it: DuckDB drops the
blocks it has already written to the file and spills the rest to its
temporary directory. DuckDB keeps every block it reads or writes until a
memory limit asks it to evict, a checkpoint does not free them, so without
this the loader grows with the tables it loads; with it, it is bounded at
any number of records, and unlike a low ``memory_limit`` (``settings``) a
load of many tables cannot run out of DuckDB memory for it (README).
"""

from __future__ import annotations

import json
import sys
import typing as t
from importlib.metadata import version
from urllib.parse import urlparse

import duckdb
import target_duckdb
from target_duckdb.db_sync import DbSync, get_catalog_name
from target_duckdb.logger import get_logger

# the version whose DbSync methods FastDbSync was checked equal to (tests/loaders)
CHECKED_VERSION = "0.8.0"
# a column of this JSON-schema type set is written as JSON, whatever its value
_JSON_TYPES = frozenset({"null", "object", "array"})
# DuckDB's row groups hold a multiple of its vector size of rows
_VECTOR_SIZE = 2048
# the memory_limit release_memory sets for a moment: DuckDB evicts all it can
_RELEASE_LIMIT = "1MB"
# per connection, the memory_limit it had before release_memory first lowered it
_FIRST_LIMITS: dict[int, str] = {}

LOGGER = get_logger("target_duckdb")


class FastDbSync(DbSync):
    """target-duckdb's DbSync, its two per-record methods without the generic flattening.

    Its flush is target-duckdb's, followed by :func:`release_memory` when the
    config sets ``release_memory_mb``."""

    _plan: tuple[t.Any, tuple[str, ...], frozenset[str]] | None = None

    def _columns(self) -> tuple[tuple[str, ...], frozenset[str]]:
        """The schema's columns in table order, and those always written as JSON.

        Computed once per flattened schema (a DbSync holds one; a new SCHEMA
        message makes a new DbSync)."""
        schema = self.flatten_schema
        plan = self._plan
        if plan is None or plan[0] is not schema:
            as_json = frozenset(
                name for name, prop in schema.items() if "type" in prop and set(prop["type"]) == _JSON_TYPES
            )
            plan = self._plan = (schema, tuple(schema), as_json)
        return plan[1], plan[2]

    def record_primary_key_string(self, record: dict[str, t.Any]) -> str | None:
        """The record's key columns joined by commas, as target-duckdb writes them."""
        if self.data_flattening_max_level:
            return t.cast("str | None", super().record_primary_key_string(record))
        keys = self.stream_schema_message["key_properties"]
        if not keys:
            return None
        if any(key not in record for key in keys):
            # target-duckdb's own path logs which key is missing and raises
            return t.cast("str | None", super().record_primary_key_string(record))
        _, as_json = self._columns()
        parts = []
        for key in keys:
            value = record[key]
            if key in as_json or isinstance(value, (dict, list)):
                value = json.dumps(value)
            parts.append(str(value))
        return ",".join(parts)

    def record_to_flattened(self, record: dict[str, t.Any]) -> list[t.Any]:
        """The CSV row of a record: each column of the schema, objects and arrays as JSON, empty as NULL."""
        if self.data_flattening_max_level:
            return t.cast("list[t.Any]", super().record_to_flattened(record))
        names, as_json = self._columns()
        row: list[t.Any] = []
        for name in names:
            if name not in record:
                row.append(None)
                continue
            value = record[name]
            if name in as_json or isinstance(value, (dict, list)):
                value = json.dumps(value)
            # target-duckdb's rule: a falsy value other than 0 (and False) is NULL
            row.append(value if value == 0 or value else None)
        return row

    def load_rows(self, records: t.Any, count: int, temp_dir: str) -> None:
        """target-duckdb's flush of a batch; then, with ``release_memory_mb``, :func:`release_memory`."""
        super().load_rows(records, count, temp_dir)
        threshold = self.connection_config.get("release_memory_mb")
        if threshold is not None:
            release_memory(self.conn, threshold, self.connection_config.get("settings", {}).get("memory_limit"))


def held_bytes(con: duckdb.DuckDBPyConnection) -> int:
    """The bytes DuckDB's buffers hold (``duckdb_memory()``)."""
    held = con.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()").fetchone()
    return int(held[0]) if held else 0


def release_memory(con: duckdb.DuckDBPyConnection, threshold_mb: int, memory_limit: t.Any = None) -> bool:
    """When DuckDB holds more than ``threshold_mb`` MB, make it evict what it can; True if it was asked.

    Its ``memory_limit`` is set to 1 MB, which evicts every block not in use
    (those in the file are dropped, the others written to the temporary
    directory) and fails, with the limit unchanged, if that is not enough;
    then it is set back to ``memory_limit`` (the ``settings`` value, as
    target-duckdb sets it), or, when the config sets none, to the limit the
    connection had before its first release, as DuckDB shows it (its default
    to 0.1 GiB). Set, not ``RESET``: DuckDB 1.2.2 resets the setting but
    leaves its buffer pool at the lowered limit; and the first value kept,
    not the one shown before each release: DuckDB shows a limit rounded, and
    setting it back again and again lowers it."""
    held = held_bytes(con)
    if held <= threshold_mb * 2**20:
        return False
    if memory_limit is None:
        memory_limit = _FIRST_LIMITS.get(id(con))
        if memory_limit is None:
            shown = t.cast("tuple[str]", con.execute("SELECT current_setting('memory_limit')").fetchone())
            memory_limit = _FIRST_LIMITS[id(con)] = shown[0]
    try:
        con.execute(f"SET memory_limit = '{_RELEASE_LIMIT}'")
    except duckdb.Error as exc:  # DuckDB evicted what it could; what is in use stays
        LOGGER.debug("DuckDB released what it could of %d bytes: %s", held, exc)
    finally:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return True


# target-duckdb's own connection, for a config without row_group_size
ORIGINAL_CONNECT = target_duckdb.duckdb_connect


def config_error(config: dict[str, t.Any]) -> str | None:
    """Why the config's ``row_group_size`` or ``release_memory_mb`` cannot be used, or None (also when unset)."""
    threshold = config.get("release_memory_mb")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int) or threshold <= 0):
        return f"release_memory_mb must be a positive number of MB, not {threshold!r}"
    size = config.get("row_group_size")
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % _VECTOR_SIZE:
        return f"row_group_size must be a positive multiple of {_VECTOR_SIZE} rows, not {size!r}"
    return None


def local_file(config: dict[str, t.Any]) -> str | None:
    """The config's local DuckDB file, or None: no path, or a MotherDuck one (a URL, or a ``token``)."""
    path = config.get("path", config.get("filepath"))
    if not path or config.get("token") or urlparse(str(path)).scheme:
        return None
    return str(path)


def duckdb_connect(config: dict[str, t.Any]) -> duckdb.DuckDBPyConnection:
    """target-duckdb's connection; with ``row_group_size``, a local file attached with that row group size.

    The fast path's own settings are checked first (an invalid one exits as
    target-duckdb's checks do). The file is attached under the name
    target-duckdb's queries give it (its stem, as ``duckdb.connect(path)``
    names it) and made the default catalog, temporary tables stay in DuckDB's
    temporary catalog, and what spills goes where it would (``<file>.tmp``);
    ``settings`` apply as in target-duckdb."""
    problem = config_error(config)
    if problem:
        LOGGER.error("Invalid configuration:\n   * %s", problem)
        sys.exit(1)
    size, path = config.get("row_group_size"), local_file(config)
    if size is None or path is None:
        if size is not None:
            # a project default (meltano.yml sets one) must not break a MotherDuck load; the path may hold a token
            LOGGER.warning("row_group_size applies to a local DuckDB file: DuckDB's own row groups for this database")
        return t.cast("duckdb.DuckDBPyConnection", ORIGINAL_CONNECT(config))
    # target-duckdb's own connection (its config checks, its settings), to an in-memory database
    db = t.cast("duckdb.DuckDBPyConnection", ORIGINAL_CONNECT({**config, "path": ":memory:"}))
    if "temp_directory" not in config.get("settings", {}):
        db.execute("SET temp_directory = ?", [f"{path}.tmp"])
    catalog = get_catalog_name(config).replace('"', '""')
    quoted = path.replace("'", "''")
    db.execute(f"ATTACH '{quoted}' AS \"{catalog}\" (ROW_GROUP_SIZE {int(size)})")
    db.execute(f'USE "{catalog}"')
    return db


def install() -> bool:
    """Make target-duckdb's loader use :class:`FastDbSync`; False (and its own code) on another version."""
    installed = version("target-duckdb")
    if installed != CHECKED_VERSION:
        LOGGER.warning(
            "target-duckdb %s is installed, the fast path was checked against %s: running target-duckdb's own code",
            installed,
            CHECKED_VERSION,
        )
        return False
    target_duckdb.DbSync = FastDbSync
    target_duckdb.duckdb_connect = duckdb_connect
    return True


def main() -> None:
    """The ``target-duckdb-fastpath`` command: target-duckdb's, with the fast path installed."""
    install()
    target_duckdb.main()
