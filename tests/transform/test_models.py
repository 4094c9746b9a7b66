"""The dbt project (transform/) run by Meltano on real loads of the sandbox:
`meltano run all-taps-modeled` (every tap into DuckDB, then
`dbt-duckdb:build`) and its PostgreSQL twin, with the end models' rows
checked against the sandbox and the raw tables, then an incremental run and
a second build; duplicates an append-only loader would leave, a second
account of a vendor and person matching (automatic and by the seed file)
on DuckDB; `dbt docs generate` and source freshness."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import shutil

import pytest

from tests.demo import ROOT, Sandboxes, meltano, meltano_taps
from tests.e2e.pgserver import PostgresServer, bin_dir

# a real load of five taps and several dbt builds: minutes on a busy machine
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

TAPS = meltano_taps()
SCALE = "150"
MARTS = ["privileged_sessions", "user_activity_daily", "people", "person_identities", "access_events"]
ACCESS_STREAMS = {
    ("tap_controlio", "audit_log"), ("tap_beyondtrust", "team_activity"),
    ("tap_beyondtrust", "vault_account_activity"), ("tap_beyondtrust", "jump_items"),
    ("tap_beyondtrust", "archive_session_events"),
}


@pytest.fixture(scope="module")
def meltano_dir(tmp_path_factory):
    """A private MELTANO_SYS_DIR_ROOT with the plugins these tests use, installed once."""
    previous = os.environ.get("MELTANO_SYS_DIR_ROOT")
    os.environ["MELTANO_SYS_DIR_ROOT"] = str(tmp_path_factory.mktemp("meltano"))
    env = {"MELTANO_ENVIRONMENT": "sandbox"}
    meltano("install", "extractor", *sorted(TAPS), env=env, quiet=True)
    meltano("install", "loader", "target-duckdb", "target-postgres", env=env, quiet=True)
    meltano("install", "utility", "dbt-duckdb", "dbt-postgres", env=env, quiet=True)
    yield
    if previous is None:
        del os.environ["MELTANO_SYS_DIR_ROOT"]
    else:
        os.environ["MELTANO_SYS_DIR_ROOT"] = previous


@pytest.fixture
def sandboxes(tmp_path):
    """Every vendor's sandbox for one test, SCALE records each."""
    with Sandboxes(TAPS.values(), tmp_path / "sandbox", "--scale", SCALE) as running:
        yield running


def dbt_env(adapter: str, tmp_path, project=None) -> dict[str, str]:
    """dbt's compiled files and logs in tmp_path (never in transform/), optionally another project copy."""
    prefix = f"DBT_{adapter.upper()}_"
    env = {prefix + "TARGET_PATH": str(tmp_path / f"dbt-target-{adapter}"),
           prefix + "LOG_PATH": str(tmp_path / "dbt-logs")}
    if project is not None:
        env |= {prefix + "PROJECT_DIR": str(project), prefix + "PROFILES_DIR": str(project)}
    return env


# --- reading the warehouses ------------------------------------------------------------------

class DuckDB:
    def __init__(self, path) -> None:
        self.path = path

    def rows(self, query: str) -> list[tuple]:
        import duckdb

        with contextlib.closing(duckdb.connect(str(self.path), read_only=True)) as con:
            return con.execute(query).fetchall()

    def execute(self, *queries: str) -> None:
        import duckdb

        with contextlib.closing(duckdb.connect(str(self.path))) as con:
            for query in queries:
                con.execute(query)


class Postgres:
    def __init__(self, server: PostgresServer) -> None:
        self.server = server

    def rows(self, query: str) -> list[tuple]:
        return self.server.sql(query)


def one(db, query: str):
    return db.rows(query)[0][0]


def count(db, query: str) -> int:
    return int(one(db, query))


def raw_fudo_session_ids(db) -> set[str]:
    """Session IDs of the current version of each Fudo report, read from the raw rows in Python."""
    latest: dict[str, object] = {}
    rows = db.rows("select report_id, cast(report_modified_at as varchar), cast(\"columns\" as varchar) "
                   "from tap_sessionreports.report_rows")
    for report_id, modified, _ in rows:
        latest[report_id] = max(latest.get(report_id, modified), modified)
    ids = set()
    for report_id, modified, cells in rows:
        if modified == latest[report_id]:
            session_id = json.loads(cells).get("Session ID")
            if session_id:
                ids.add(session_id)
    return ids


def check_models(db, expected: dict[str, dict[str, int]]) -> dict[str, int]:
    """The end models hold what the sandbox served; returns privileged sessions per vendor."""
    per_vendor = {v: int(n) for v, n in db.rows(
        "select vendor, count(*) from analytics.privileged_sessions group by vendor")}
    assert per_vendor == {
        "beyondtrust": expected["beyondtrust"]["support_sessions"],
        "ekran": expected["ekran"]["sessions"],
        "fudo": len(raw_fudo_session_ids(db)),
    }
    assert per_vendor["fudo"] > 0
    # every session once, keyed per vendor, account and id
    assert count(db, "select count(distinct privileged_session_id) from analytics.privileged_sessions") \
        == sum(per_vendor.values())
    assert count(db, "select count(*) from analytics.privileged_sessions where duration_seconds < 0") == 0
    assert count(db, "select count(*) from analytics.privileged_sessions where is_open <> (ended_at is null)") == 0
    # sessions still open: exactly those the vendor sends without an end;
    # closed Ekran sessions keep the vendor's duration
    assert count(db, "select count(*) from analytics.privileged_sessions where is_open and vendor = 'beyondtrust'") \
        == count(db, "select count(*) from tap_beyondtrust.support_sessions where end_time is null")
    assert float(one(db, "select sum(p.duration_seconds - s.\"durationSeconds\") from analytics.privileged_sessions p "
                         "join tap_ekran.sessions s "
                         "on p.vendor = 'ekran' and p.session_id = cast(s.\"sessionId\" as varchar) "
                         "where s.\"durationSeconds\" >= 0")) == pytest.approx(0, abs=1e-6)
    # BeyondTrust: the recording link the vendor gives
    assert count(db, "select count(*) from analytics.privileged_sessions "
                     "where vendor = 'beyondtrust' and link_url like 'http%'") \
        == count(db, "select count(*) from tap_beyondtrust.support_sessions "
                     "where session_recording_view_url like 'http%'")

    # user_activity_daily: one row per ActivTrak user and day, Controlio user and day, Ekran user and login day
    activity = {v: int(n) for v, n in db.rows(
        "select vendor, count(*) from analytics.user_activity_daily group by vendor")}
    assert activity["activtrak"] == count(
        db, 'select count(*) from (select distinct users_key, "date" from tap_activtrak.working_hours_users) d')
    assert activity["ekran"] == count(
        db, 'select count(*) from (select distinct "userId", cast("loginDate" as date) from tap_ekran.sessions '
            'where "durationSeconds" is not null) d')
    assert activity["controlio"] == count(
        db, "select count(*) from (select user_id, window_start from tap_controlio.workload_by_users "
            "union select user_id, window_start from tap_controlio.productivity) d")
    assert float(one(db, "select sum(active_seconds) from analytics.user_activity_daily where vendor = 'activtrak'")) \
        == pytest.approx(float(one(db, "select sum(cast(\"activeTime\" ->> 'total' as double precision)) "
                                       "from tap_activtrak.working_hours_users")))
    assert count(db, "select count(*) from analytics.user_activity_daily where person_id is null") == 0

    # access_events: every row of its five raw tables
    events = {s: int(n) for s, n in db.rows(
        "select source_stream, count(*) from analytics.access_events group by source_stream")}
    assert events == {table: expected[schema.removeprefix("tap_")][table] for schema, table in ACCESS_STREAMS}
    # people: every identity has one person, actors resolve to people
    assert count(db, "select count(*) from analytics.person_identities i left join analytics.people p "
                     "on p.person_id = i.person_id where p.person_id is null") == 0
    assert count(db, "select sum(identity_count) from analytics.people") \
        == count(db, "select count(*) from analytics.person_identities")
    assert count(db, "select count(*) from analytics.access_events where actor_person_id is not null") > 0
    return per_vendor


def mart_snapshot(db) -> dict[str, collections.Counter]:
    """Every row of every end model (as text), to compare two builds."""
    return {m: collections.Counter(tuple(map(str, row)) for row in db.rows(f"select * from analytics.{m}"))
            for m in MARTS}


# --- DuckDB -----------------------------------------------------------------------------------

def test_duckdb_models_full_incremental_rebuild_and_matching(meltano_dir, sandboxes, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    db = DuckDB(warehouse)
    env = {**sandboxes.env(), "MELTANO_ENVIRONMENT": "sandbox", "TARGET_DUCKDB_FILEPATH": str(warehouse),
           "DBT_DUCKDB_PATH": str(warehouse), **dbt_env("duckdb", tmp_path)}
    meltano("run", "--full-refresh", "all-taps-modeled", env=env, quiet=True)
    first = check_models(db, sandboxes.expected_counts())
    assert all(first.values())

    # new and late records, sessions that close: the incremental job brings them into the models
    for vendor in sandboxes.urls:
        sandboxes.admin(vendor, "advance", {})
    meltano("run", "all-taps-modeled", env=env, quiet=True)
    second = check_models(db, sandboxes.expected_counts())
    assert second["ekran"] > first["ekran"] and second["beyondtrust"] > first["beyondtrust"]

    # a full-refresh build gives the rows the incremental job left (incremental models, if any, equal a rebuild)
    after_run = mart_snapshot(db)
    meltano("invoke", "dbt-duckdb", "build", "--full-refresh", env=env, quiet=True)
    assert mart_snapshot(db) == after_run

    sessions_per_vendor = "select vendor, count(*) from analytics.privileged_sessions group by vendor"
    sessions_before = {v: int(n) for v, n in db.rows(sessions_per_vendor)}
    activity_before = count(db, "select count(*) from analytics.user_activity_daily where vendor = 'activtrak'")
    closed = db.rows("select sessionid, logoutdate from tap_ekran.sessions where logoutdate is not null "
                     "order by sessionid limit 1")[0]
    db.execute(
        # an append-only loader's tables (no primary key, as target-postgres's append-only method leaves them) ...
        *(f"create table {t}_appended as select * from {t}; drop table {t}; "
          f"alter table {t}_appended rename to {t.split('.')[1]}"
          for t in ("tap_ekran.sessions", "tap_beyondtrust.support_sessions")),
        # ... holding an older copy of a session (still open) and second copies of BeyondTrust sessions
        f"insert into tap_ekran.sessions select * replace (cast(null as timestamp) as logoutdate) "
        f'from tap_ekran.sessions where "sessionId" = {closed[0]}',
        "insert into tap_beyondtrust.support_sessions select * from tap_beyondtrust.support_sessions limit 3",
        # a second ActivTrak account (an inherited plugin's load schema)
        "create schema tap_activtrak_eu",
        "create table tap_activtrak_eu.working_hours_users as select * from tap_activtrak.working_hours_users",
        "create table tap_activtrak_eu.activity_log as select * from tap_activtrak.activity_log",
        # a Controlio user named in the domain\user form of an ActivTrak login: matched automatically
        "insert into tap_controlio.users (id, name, friendly_name, extra) "
        "values (9001, 'CORP\\User001', 'Matched User', '{}')",
    )
    assert count(db, f"select count(*) from tap_ekran.sessions where sessionid = {closed[0]}") == 2

    # the seed file puts an Ekran user and a BeyondTrust representative under one person
    project = tmp_path / "transform"
    shutil.copytree(ROOT / "transform", project, ignore=shutil.ignore_patterns("target", "logs"))
    ekran_user = one(db, "select min(userid) from tap_ekran.sessions")
    (project / "seeds" / "person_overrides.csv").write_text(
        "vendor,source_account,identity_type,vendor_user_id,person_key\n"
        f"ekran,,,{ekran_user},alice\n"
        "beyondtrust,tap_beyondtrust,representative,1,alice\n")
    meltano("invoke", "dbt-duckdb:build", env={**env, **dbt_env("duckdb", tmp_path, project)}, quiet=True)

    sessions = {v: int(n) for v, n in db.rows(sessions_per_vendor)}
    assert sessions == sessions_before  # the duplicates are gone
    assert db.rows("select ended_at from analytics.privileged_sessions "
                   f"where vendor = 'ekran' and session_id = '{closed[0]}'") == [(closed[1],)]
    by_account = dict(db.rows("select source_account, count(*) from analytics.user_activity_daily "
                              "where vendor = 'activtrak' group by 1"))
    assert by_account == {"tap_activtrak": activity_before, "tap_activtrak_eu": activity_before}

    matched = db.rows("select vendors, activtrak_user_ids, controlio_user_ids from analytics.people "
                      "where person_key = 'user001'")
    assert matched == [("activtrak, controlio", "user001, user001", "9001")]  # one id per ActivTrak account
    alice = db.rows("select vendors, ekran_user_ids, beyondtrust_user_ids, is_overridden from analytics.people "
                    "where person_key = 'alice'")
    assert alice == [("beyondtrust, ekran", str(ekran_user), "1", True)]
    assert count(db, "select count(*) from analytics.privileged_sessions s "
                     "join analytics.people p on p.person_id = s.person_id where p.person_key = 'alice'") \
        == count(db, f"select count(distinct sessionid) from tap_ekran.sessions where userid = {ekran_user}") \
        + count(db, "select count(distinct lsid) from tap_beyondtrust.support_sessions "
                    "where primary_rep ->> 'id' = '1'")
    assert count(db, "select count(*) from analytics.people where is_matched_across_vendors") == 2

    # docs and source freshness on the same warehouse
    meltano("invoke", "dbt-duckdb:docs-generate", env=env, quiet=True)
    catalog = json.loads((tmp_path / "dbt-target-duckdb" / "catalog.json").read_text())
    assert {f"model.five_vendors.{m}" for m in MARTS} <= set(catalog["nodes"])
    assert "source.five_vendors.tap_ekran.sessions" in catalog["sources"]
    meltano("invoke", "dbt-duckdb:freshness", env=env, quiet=True)


# --- PostgreSQL -------------------------------------------------------------------------------

@pytest.mark.skipif(bin_dir() is None, reason="PostgreSQL is not installed (.ci/run installs it)")
def test_postgres_models_full_then_incremental(meltano_dir, sandboxes, tmp_path):
    server = PostgresServer().start()
    try:
        db = Postgres(server)
        env = {**sandboxes.env(), "MELTANO_ENVIRONMENT": "sandbox", **server.meltano_env(),
               "DBT_POSTGRES_HOST": server.host, "DBT_POSTGRES_PORT": str(server.port),
               "DBT_POSTGRES_USER": server.user, "DBT_POSTGRES_PASSWORD": "",
               "DBT_POSTGRES_DATABASE": server.database, **dbt_env("postgres", tmp_path)}
        meltano("run", "--full-refresh", "all-taps-modeled-postgres", env=env, quiet=True)
        first = check_models(db, sandboxes.expected_counts())
        for vendor in sandboxes.urls:
            sandboxes.admin(vendor, "advance", {})
        meltano("run", "all-taps-modeled-postgres", env=env, quiet=True)
        second = check_models(db, sandboxes.expected_counts())
        assert second["ekran"] > first["ekran"]
        meltano("invoke", "dbt-postgres:docs-generate", env=env, quiet=True)
        catalog = json.loads((tmp_path / "dbt-target-postgres" / "catalog.json").read_text())
        assert {f"model.five_vendors.{m}" for m in MARTS} <= set(catalog["nodes"])
    finally:
        server.stop()
