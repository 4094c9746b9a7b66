"""`meltano run <tap> target-duckdb` for every tap of meltano.yml, against the
sandbox, with the row counts checked in the DuckDB file (never the exit code
alone: an incompatible duckdb makes target-duckdb load nothing and exit 0)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.demo import ROOT, link_packages, meltano, meltano_taps, project_config, schema_of, warehouse_counts

# Every meltano run of the project shares its .meltano/run folders: the other
# end-to-end cases are collected here so that they run one at a time.
from tests.e2e.accounts_cases import test_two_accounts_keep_their_own_data_and_state  # noqa: F401
from tests.e2e.conftest import meltano_output
from tests.e2e.deletion_cases import test_an_entry_deleted_at_the_vendor_is_marked_deleted  # noqa: F401
from tests.e2e.extras import duckdb_tables_without_undocumented
from tests.e2e.postgres_cases import (  # noqa: F401
    postgres,
    test_postgres_counts_types_upserts_and_crash_safety,
    test_postgres_down_or_stopped_mid_run_fails_clearly_and_state_holds,
)

pytestmark = pytest.mark.e2e

TAPS = meltano_taps()


# own_meltano_dir (autouse) and sandboxes: tests/e2e/conftest.py


@pytest.mark.parametrize("tap", sorted(TAPS))
def test_meltano_run_loads_every_record_then_only_new_ones(sandboxes, tap, tmp_path):
    vendor = TAPS[tap]
    warehouse = tmp_path / "warehouse.duckdb"
    env = {
        **sandboxes.env(),
        "MELTANO_ENVIRONMENT": "sandbox",
        "TARGET_DUCKDB_FILEPATH": str(warehouse),
    }
    suffix = f"e2e-{uuid.uuid4().hex[:8]}"  # meltano's system database outlives the test
    meltano("run", "--full-refresh", "--state-id-suffix", suffix, tap, "target-duckdb", env=env, quiet=True)
    expected = sandboxes.expected_counts()[vendor]
    assert expected, f"the {vendor} sandbox names no expected counts"
    loaded = {table: n for (schema, table), n in warehouse_counts(warehouse).items() if schema == schema_of(tap)}
    assert {s: loaded.get(s, 0) for s in expected} == expected
    # fields the schemas do not name reach the extra column
    assert duckdb_tables_without_undocumented(warehouse, schema_of(tap)) == []

    sandboxes.admin(vendor, "advance", {})
    meltano("run", "--state-id-suffix", suffix, tap, "target-duckdb", env=env, quiet=True)
    after = sandboxes.expected_counts()[vendor]
    loaded = {table: n for (schema, table), n in warehouse_counts(warehouse).items() if schema == schema_of(tap)}
    assert {s: loaded.get(s, 0) for s in after} == after
    assert sum(after.values()) > sum(expected.values()), "advance() added nothing to sync"


def test_all_taps_job_lists_every_extractor():
    project = project_config()
    (job,) = [j for j in project["jobs"] if j["name"] == "all-taps"]
    in_job = {task.split()[0] for task in job["tasks"]}
    extractors = {e["name"] for e in project["plugins"]["extractors"] if "inherit_from" not in e}
    assert in_job == extractors == set(TAPS)


def _loader_flushes(output: str, table: str) -> list[int]:
    """The sizes of target-duckdb's flushes into ``table``, from its log lines."""
    return [int(n) for n in re.findall(rf"Loading (\d+) rows into '[^']*\"{table}\"'", output)]


def _run_into_duckdb(project: Path, tap: str, warehouse: Path, env: dict[str, str]) -> str:
    """meltano's output and log of a full-refresh run of ``tap`` into the DuckDB file ``warehouse``."""
    return meltano_output(
        "run", "--full-refresh", "--state-id-suffix", f"e2e-{uuid.uuid4().hex[:8]}", tap, "target-duckdb",
        env={**env, "MELTANO_ENVIRONMENT": "sandbox", "TARGET_DUCKDB_FILEPATH": str(warehouse),
             "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"},
        timeout=600, project=project, with_log=True)


def test_target_duckdb_flushes_as_many_rows_as_the_extractor_asks(sandboxes, tmp_path):
    """target-duckdb's batch_size_rows comes from the extractor's extra
    ``target_duckdb_batch_size_rows`` (here set through its environment
    variable), and an extractor without the extra gets the project's default
    (meltano.yml's top-level env): the flushes in the loader's log and the rows
    in DuckDB say which."""
    sessions = sandboxes.expected_counts()["ekran"]["sessions"]
    assert sessions > 14, "the sandbox needs more than two flushes of sessions"

    warehouse = tmp_path / "extra.duckdb"
    out = _run_into_duckdb(ROOT, "tap-ekran", warehouse,
                           {**sandboxes.env(), "TAP_EKRAN__TARGET_DUCKDB_BATCH_SIZE_ROWS": "7"})
    flushes = _loader_flushes(out, "sessions")
    assert flushes[:-1] == [7] * (len(flushes) - 1) and 0 < flushes[-1] <= 7 and sum(flushes) == sessions
    assert warehouse_counts(warehouse)[("tap_ekran", "sessions")] == sessions

    # the same project without tap-ekran's extra, and a project default of 5
    project = tmp_path / "project"
    project.mkdir()
    link_packages(project)
    text = (ROOT / "meltano.yml").read_text()
    own = re.compile(r"(  - name: tap-ekran\n)    target_duckdb_batch_size_rows: \d+\n")
    default = re.compile(r"(\n  MELTANO_EXTRACT__TARGET_DUCKDB_BATCH_SIZE_ROWS: )'\d+'\n")
    assert own.search(text) and default.search(text), "meltano.yml no longer sets the sizes this test changes"
    (project / "meltano.yml").write_text(default.sub(r"\g<1>'5'\n", own.sub(r"\1", text)))
    warehouse = tmp_path / "default.duckdb"
    flushes = _loader_flushes(_run_into_duckdb(project, "tap-ekran", warehouse, sandboxes.env()), "sessions")
    assert flushes[:-1] == [5] * (len(flushes) - 1) and 0 < flushes[-1] <= 5 and sum(flushes) == sessions
    assert warehouse_counts(warehouse)[("tap_ekran", "sessions")] == sessions
