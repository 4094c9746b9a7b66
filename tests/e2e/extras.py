"""Fields the vendor sends that the taps' schemas do not name land in each
table's ``extra`` column: the sandboxes send such fields, named
``undocumented_*``, and a loaded table with an ``extra`` column must hold
some of them."""

from __future__ import annotations

import contextlib
import json
import typing as t

PREFIX = "undocumented_"


def has_undocumented_key(value: t.Any) -> bool:
    """Whether ``value`` (an ``extra`` object, or JSON text of one) has a key
    starting with ``undocumented_``, at any depth."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return False
    if isinstance(value, dict):
        return any(str(k).startswith(PREFIX) or has_undocumented_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_undocumented_key(v) for v in value)
    return False


def duckdb_tables_without_undocumented(path, schema: str) -> list[str]:
    """The tables of ``schema`` with an ``extra`` column and rows, but no row
    whose ``extra`` has an ``undocumented_*`` key."""
    import duckdb

    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        tables = [name for (name,) in con.execute(
            "select table_name from information_schema.columns where table_schema = ? and column_name = 'extra'",
            [schema]).fetchall()]
        missing = []
        for table in sorted(tables):
            if not con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]:
                continue
            values = con.execute(
                f'select cast(extra as varchar) from "{schema}"."{table}" '
                f"where cast(extra as varchar) like '%{PREFIX}%' limit 50").fetchall()
            if not any(has_undocumented_key(v) for (v,) in values):
                missing.append(table)
        return missing


def postgres_tables_without_undocumented(postgres, schema: str, database: str) -> list[str]:
    tables = [name for (name,) in postgres.sql(
        "select table_name from information_schema.columns "
        f"where table_schema = '{schema}' and column_name = 'extra'", database)]
    missing = []
    for table in sorted(tables):
        if not int(postgres.sql(f'select count(*) from "{schema}"."{table}"', database)[0][0]):
            continue
        values = postgres.sql(
            f'select extra::text from "{schema}"."{table}" where extra::text like \'%{PREFIX}%\' limit 50',
            database)
        if not any(has_undocumented_key(v) for (v,) in values):
            missing.append(table)
    return missing
