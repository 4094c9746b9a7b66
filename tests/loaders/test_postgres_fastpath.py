"""target-postgres-fastpath: the same array literals, JSON, tables, rows and STATE as target-postgres 0.8.1.

FastListDumper replaces psycopg's text dumper of Python lists (what
target-postgres's COPY writes a ``jsonb[]`` or other array column with); it
is compared with psycopg's own on lists built to reach every branch of the
array-literal rules. serialize_json replaces singer-sdk's (every ``jsonb``
value and ``jsonb[]`` element); it is compared with singer-sdk's on values
of every JSON kind, one after another. create_engine is singer-sdk's engine
without SQLAlchemy's compiled-statement cache: it keeps none of the
statements of the temporary tables a load makes. And the whole loader with target-postgres's own CLI on
every tap's sandbox output into a real PostgreSQL: the same columns, the same
rows, the same STATE messages on stdout."""

from __future__ import annotations

import decimal
import sys
import typing as t
from importlib import metadata
from pathlib import Path

import psycopg
import pytest
import sqlalchemy
from psycopg.adapt import PyFormat
from psycopg.types.array import ListDumper
from psycopg.types.json import Jsonb
from singer_sdk.sql import SQLConnector
from target_postgres.connector import PostgresConnector
from target_postgres.target import TargetPostgres
from target_postgres_fastpath import FastListDumper, create_engine, install, serialize_json

from tests.e2e.pgserver import PostgresServer, bin_dir
from tests.loaders.common import BATCH_ROWS, TAPS, assert_same_tables, run_loader, tap_output

pytestmark = pytest.mark.skipif(bin_dir() is None, reason="PostgreSQL is not installed (.ci/run installs it)")

BIN = Path(sys.executable).parent
#: what each load sets by the clock: left out of the comparison
CLOCK_COLUMNS = {"_sdc_received_at", "_sdc_batched_at", "_sdc_sequence", "_sdc_sync_started_at"}

TEXTS = ["plain", "", "NULL", "null", "Null", "two words", "tab\there", "new\nline", "{braces}", "a,b", "semi;colon",
         'say "hi"', "back\\slash", '\\"both\\"', '"', "\\", "ü é ✓", "0", " lead", "trail "]
LISTS: list[list] = [
    [],
    [None],
    [None, None],
    TEXTS,
    [*TEXTS, None],
    [[text] for text in TEXTS],  # nested: each element a one-element list
    [["a", None], [], ["", "NULL"]],
    [1, 0, -7],
    [1.5, None],
    [True, False],
    [Jsonb({"k": 'v"\\', "n": None, "list": [1, "two"], "ü": "é"}), Jsonb([]), Jsonb("s"), Jsonb(None)],
    [Jsonb({"customers": [{"name": 'O"Brien \\ co', "at": "2026-01-01T00:00:00+00:00"}]})],
]


@pytest.mark.parametrize("items", LISTS, ids=range(len(LISTS)))
@pytest.mark.parametrize("delimiter", [b",", b";"])
def test_array_literals_are_psycopgs(items, delimiter):
    own, fast = ListDumper(list).upgrade(items, PyFormat.TEXT), FastListDumper(list).upgrade(items, PyFormat.TEXT)
    assert type(fast) is FastListDumper and type(own) is ListDumper
    own.delimiter = fast.delimiter = delimiter  # e.g. box[] uses ';'
    assert fast.dump(items) == own.dump(items)


JSON_VALUES: list = [
    None, True, False, 0, -1, 2**70, 1.5, -0.0, 1e300, float("nan"), float("inf"), float("-inf"),
    decimal.Decimal("1.10"), decimal.Decimal("-0.000001"), decimal.Decimal("1E+3"),
    *TEXTS, "\u0000 \x7f \ud83d\ude00 \U0001f600 \u2028",
    [], {}, (1, "t"), [None, [1, [2, [3]]]],
    {"k": 'v"\\', "n": None, "list": [1, "two", decimal.Decimal("3.0")], "ü": "é", "": {"": []}},
    {3: "int key", 2.5: "float key", True: "bool key", None: "none key"},
    {"customers": [{"name": 'O"Brien \\ co', "at": "2026-01-01T00:00:00+00:00", "id": 7}]},
]


def _outcome(serialize: t.Callable[[t.Any, object], str], value: object) -> str:
    try:
        return serialize(None, value)
    except (TypeError, ValueError) as error:  # (simplejson 4 refuses NaN and infinities)
        return f"{type(error).__name__}: {error}"


def test_json_is_singer_sdks():
    """Value after value through the one encoder (nothing carried over, the errors between them
    included): the text singer-sdk 0.54.9's serialize_json writes, or the same error."""
    circular: list = []
    circular.append(circular)
    values = [*JSON_VALUES, circular, {"at": object()}, *JSON_VALUES[::-1]]
    fast = [_outcome(serialize_json, value) for value in values]
    assert fast == [_outcome(SQLConnector.serialize_json, value) for value in values]
    errors = [outcome for outcome in fast if outcome.startswith(("TypeError", "ValueError"))]
    assert len(errors) == 2 * 3 + 2  # NaN and the infinities (twice), the circular list, the object


def test_an_escaped_literal_reads_back_in_postgresql(postgres, monkeypatch):
    """The literal FastListDumper writes is the one PostgreSQL reads back as the same elements."""
    monkeypatch.setattr(PostgresConnector, "serialize_json", PostgresConnector.serialize_json)  # put back after
    install()
    try:
        with psycopg.connect(**_connection(postgres)) as conn:
            assert conn.adapters.get_dumper(list, PyFormat.TEXT) is FastListDumper
            (back,) = conn.execute("select %t::text[]", [TEXTS]).fetchone()
            assert back == TEXTS
    finally:
        psycopg.adapters.register_dumper(list, ListDumper)


@pytest.mark.parametrize("other", ["psycopg", "singer-sdk"])
def test_install_replaces_only_on_the_checked_versions(other, monkeypatch):
    own_serializer = PostgresConnector.serialize_json
    assert own_serializer is SQLConnector.serialize_json  # target-postgres 0.8.1 has none of its own
    monkeypatch.setattr(PostgresConnector, "serialize_json", own_serializer)  # put back after the test
    monkeypatch.setattr(PostgresConnector, "create_engine", SQLConnector.create_engine)
    try:
        assert install() is True
        assert psycopg.adapters.get_dumper(list, PyFormat.TEXT) is FastListDumper
        assert PostgresConnector.serialize_json is serialize_json
        assert PostgresConnector.create_engine is create_engine
        psycopg.adapters.register_dumper(list, ListDumper)
        PostgresConnector.serialize_json = own_serializer  # type: ignore[method-assign]
        monkeypatch.setattr("target_postgres_fastpath.version",
                            lambda package: "9.9.9" if package == other else metadata.version(package))
        assert install() is False
        dumper = psycopg.adapters.get_dumper(list, PyFormat.TEXT)
        assert (dumper is ListDumper) == (other == "psycopg")
        assert (PostgresConnector.serialize_json is own_serializer) == (other == "singer-sdk")
    finally:
        psycopg.adapters.register_dumper(list, ListDumper)


def test_an_engine_of_its_own_is_left_alone(monkeypatch):
    def own_engine(connector: PostgresConnector) -> sqlalchemy.Engine:
        return sqlalchemy.create_engine("postgresql+psycopg://")

    monkeypatch.setattr(PostgresConnector, "serialize_json", PostgresConnector.serialize_json)  # put back after
    monkeypatch.setattr(PostgresConnector, "create_engine", own_engine)
    try:
        assert install() is False
        assert PostgresConnector.create_engine is own_engine
    finally:
        psycopg.adapters.register_dumper(list, ListDumper)


def test_the_engine_keeps_no_statement_of_a_temporary_table(postgres, monkeypatch):
    """Each load of a batch goes through a temporary table of a new name:
    singer-sdk's engine keeps its compiled statements (and the table with
    them) up to 500, create_engine's keeps none, and runs them the same."""
    config = TargetPostgres(config={"host": postgres.host, "port": postgres.port, "user": postgres.user,
                                    "password": "", "database": postgres.database}).config  # with its defaults
    cached = {}
    for built_by in (SQLConnector.create_engine, create_engine):
        monkeypatch.setattr(PostgresConnector, "create_engine", built_by)
        connector = PostgresConnector(config=config)
        with connector._connect() as conn:
            for i in range(5):
                column = sqlalchemy.Column("a", sqlalchemy.Integer)
                table = sqlalchemy.Table(f"batch_{i}", sqlalchemy.MetaData(), column, prefixes=["TEMPORARY"])
                table.create(conn)
                conn.execute(sqlalchemy.insert(table).values(a=i))
                assert conn.execute(sqlalchemy.select(table.c.a)).scalar_one() == i
                table.drop(conn)
        cached[built_by] = len(connector._engine._compiled_cache)
        connector._engine.dispose()
    assert cached[SQLConnector.create_engine] >= 10
    assert cached[create_engine] == 0


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server
    server.stop()


def _connection(postgres: PostgresServer) -> dict:
    return {"host": postgres.host, "port": postgres.port, "user": postgres.user, "password": "",
            "dbname": postgres.database}


def _load(command: list[str], messages: str, postgres: PostgresServer, schema: str, tmp: Path) -> list[str]:
    # meltano.yml's settings of target-postgres, flushing every BATCH_ROWS rows
    config = {"host": postgres.host, "port": postgres.port, "user": postgres.user, "password": "",
              "database": postgres.database, "default_target_schema": schema, "load_method": "upsert",
              "add_record_metadata": True, "activate_version": True, "hard_delete": False,
              "validate_records": False, "use_copy": True, "batch_size_rows": BATCH_ROWS}
    return run_loader(command, config, messages, tmp, schema)


def _tables(postgres: PostgresServer, schema: str) -> dict[str, tuple[list, list]]:
    tables = {}
    for (name,) in postgres.sql(f"select table_name from information_schema.tables where table_schema = '{schema}'"):
        columns = postgres.sql(
            "select column_name, data_type, udt_name from information_schema.columns "
            f"where table_schema = '{schema}' and table_name = '{name}' order by ordinal_position")
        kept = ", ".join(f'"{column}"' for column, _, _ in columns if column not in CLOCK_COLUMNS)
        rows = postgres.sql(f'select row({kept})::text from "{schema}"."{name}" order by 1')
        tables[name] = (columns, rows)
    return tables


@pytest.mark.parametrize("tap", sorted(TAPS))
def test_a_tap_loads_as_with_target_postgres(tap, postgres, sandbox_factory, tmp_path):
    """Every stream of the tap's sandbox run, through both loaders in small
    batches (each flush an upsert into rows already loaded): equal columns,
    rows (arrays of objects included) and STATE lines."""
    messages, counts = tap_output(tap, sandbox_factory, tmp_path)
    own_schema, fast_schema = f"own_{tap.replace('-', '_')}", f"fast_{tap.replace('-', '_')}"
    own_state = _load([str(BIN / "python"), "-c", "from target_postgres.target import TargetPostgres as T; T.cli()"],
                      messages, postgres, own_schema, tmp_path)
    fast_state = _load([str(BIN / "target-postgres-fastpath")], messages, postgres, fast_schema, tmp_path)
    assert fast_state == own_state and own_state, "the STATE lines differ"

    own, fast = _tables(postgres, own_schema), _tables(postgres, fast_schema)
    assert_same_tables(own, fast, counts)
    if tap == "tap-beyondtrust":
        # the support sessions' arrays of objects: what the fast path writes
        arrays = [column for column, kind, _ in own["support_sessions"][0] if kind == "ARRAY"]
        assert {"customers", "representatives", "teams"} <= set(arrays)
        (filled,) = postgres.sql(f'select count(*) from "{fast_schema}".support_sessions '
                                 "where cardinality(customers) > 0 and customers[1]::text like '%\"%'")[0]
        assert int(filled) > 0
