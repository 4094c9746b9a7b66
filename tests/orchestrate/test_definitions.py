"""The Dagster code location (orchestrate/) loads, and its jobs, ops, pools,
retries and schedules are meltano.yml's as Meltano itself reads them."""

from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from tests.orchestrate.conftest import MELTANO_BIN, ORCHESTRATE, ROOT, base_env, dagster_side


def dagster_name(name: str) -> str:
    return "".join(c if c.isalnum() or c == "_" else "_" for c in name)


def meltano_json(*args: str, env: dict) -> dict:
    proc = subprocess.run([str(MELTANO_BIN), *args, "--format=json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=True)
    return json.loads(proc.stdout)


def test_definitions_validate(dagster_venv, dagster_home, tmp_path):
    env = base_env(dagster_home, tmp_path / "meltano")
    proc = subprocess.run(
        [str(dagster_venv / "dagster"), "definitions", "validate", "-m", "meltano_dagster.definitions",
         "-d", str(ORCHESTRATE)],
        cwd=ORCHESTRATE, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "Validation successful for code location meltano_dagster.definitions" in proc.stdout + proc.stderr


def test_jobs_and_schedules_are_meltanos(dagster_venv, dagster_home, tmp_path):
    env = base_env(dagster_home, tmp_path / "meltano")
    described = dagster_side("describe", env=env)
    jobs = meltano_json("job", "list", env=env)["jobs"]
    schedules = meltano_json("schedule", "list", env=env)["schedules"]["job"]
    assert jobs, "meltano.yml defines no job"

    assert set(described["jobs"]) == {dagster_name(j["job_name"]) for j in jobs}
    for job in jobs:
        dagster_job = described["jobs"][dagster_name(job["job_name"])]
        tasks = [task if isinstance(task, str) else " ".join(task) for task in job["tasks"]]
        # one op per task, each a `meltano run` of that task
        assert sorted(op["task"] for op in dagster_job["ops"].values()) == sorted(" ".join(t.split()) for t in tasks)
        assert dagster_job["tags"]["meltano/job"] == job["job_name"]
        for op in dagster_job["ops"].values():
            if op["task"].startswith("tap-"):
                # one pool per extractor: per account
                assert op["extractor"] == op["task"].split()[0]
                assert op["pool"] == f"meltano/{op['extractor']}"
            assert op["retry"] == {"max_retries": 3, "delay": 60.0, "backoff": "EXPONENTIAL"}

    assert set(described["schedules"]) == {dagster_name(s["name"]) for s in schedules if s["cron_interval"]}
    for schedule in schedules:
        if not schedule["cron_interval"]:
            continue
        dagster_schedule = described["schedules"][dagster_name(schedule["name"])]
        assert dagster_schedule["cron"] == schedule["cron_interval"]
        assert dagster_schedule["job"] == dagster_name(schedule["job"]["name"])
        assert dagster_schedule["env"] == schedule["env"]
        assert dagster_schedule["status"] == "RUNNING"


PROJECT = """\
version: 1
default_environment: dev
environments:
- name: dev
plugins:
  extractors:
  - name: tap-x
    namespace: tap_x
    pip_url: tap-x
    executable: tap-x
  - name: tap-x--eu
    inherit_from: tap-x
  - name: tap-x--us
    inherit_from: tap-x
  loaders:
  - name: target-postgres
    namespace: target_postgres
    pip_url: target-postgres
  - name: target-duckdb
    namespace: target_duckdb
    pip_url: target-duckdb
  - name: target-duckdb--copy
    inherit_from: target-duckdb
  utilities:
  - name: dbt-postgres
    namespace: dbt_postgres
    pip_url: dbt-postgres
jobs:
- name: modeled
  tasks:
  - tap-x--eu target-postgres
  - tap-x--us target-postgres
  - dbt-postgres:build
  - [tap-x target-postgres, dbt-postgres:test]
- name: duck
  tasks:
  - tap-x--eu target-duckdb
  - tap-x--us target-duckdb--copy
  - tap-x target-postgres
schedules:
- name: modeled-daily
  interval: '@daily'
  job: modeled
- name: duck-by-hand
  interval: '@manual'
  job: duck
"""


def test_graph_runs_accounts_side_by_side_then_dbt(dagster_venv, dagster_home, tmp_path):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "meltano.yml").write_text(PROJECT)
    env = base_env(dagster_home, tmp_path / "meltano", MELTANO_PROJECT_ROOT=str(tmp_path / "project"),
                   MELTANO_DAGSTER_OP_RETRIES="5", MELTANO_DAGSTER_RETRY_DELAY="2.5")
    described = dagster_side("describe", env=env)

    modeled = described["jobs"]["modeled"]["ops"]
    eu, us = modeled["tap_x__eu_target_postgres"], modeled["tap_x__us_target_postgres"]
    # two accounts: apart in pools, side by side in the run
    assert (eu["pool"], us["pool"]) == ("meltano/tap-x--eu", "meltano/tap-x--us")
    assert eu["upstream"] == us["upstream"] == []
    # the dbt build waits for both loads; what follows it waits for it
    assert modeled["dbt_postgres_build"]["upstream"] == ["tap_x__eu_target_postgres", "tap_x__us_target_postgres"]
    assert modeled["dbt_postgres_build"]["pool"] == "meltano/dbt-postgres"
    assert modeled["tap_x_target_postgres_dbt_postgres_test"]["upstream"] == ["dbt_postgres_build"]
    assert modeled["tap_x_target_postgres_dbt_postgres_test"]["pool"] == "meltano/tap-x"
    assert eu["retry"] == {"max_retries": 5, "delay": 2.5, "backoff": "EXPONENTIAL"}
    assert "meltano/single-writer" not in described["jobs"]["modeled"]["tags"]

    # DuckDB files take one writer: those loads run one after another, and the
    # run carries the tag the instance's run queue limits to one run at a time
    duck = described["jobs"]["duck"]
    assert duck["ops"]["tap_x__eu_target_duckdb"]["upstream"] == []
    assert duck["ops"]["tap_x__us_target_duckdb__copy"]["upstream"] == ["tap_x__eu_target_duckdb"]
    assert duck["ops"]["tap_x_target_postgres"]["upstream"] == []
    assert duck["tags"]["meltano/single-writer"] == "target-duckdb,target-duckdb--copy"

    # @daily is Meltano's alias; @manual is not scheduled
    assert described["schedules"] == {
        "modeled_daily": {"cron": "0 0 * * *", "job": "modeled", "status": "RUNNING", "env": {}},
    }


@pytest.mark.parametrize("setting", ["state_backend:\n  uri: s3://bucket/state", "database_uri: sqlite:///x.db"])
def test_state_location_in_meltano_yml_is_refused(dagster_venv, dagster_home, tmp_path, setting):
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "meltano.yml").write_text(PROJECT + textwrap.dedent(setting) + "\n")
    env = base_env(dagster_home, tmp_path / "meltano", MELTANO_PROJECT_ROOT=str(tmp_path / "project"))
    with pytest.raises(AssertionError) as failed:
        dagster_side("describe", env=env)
    key = setting.split(":")[0]
    assert f"meltano.yml sets '{key}'" in str(failed.value)
    assert "MELTANO_DATABASE_URI" in str(failed.value)
