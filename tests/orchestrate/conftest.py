"""Fixtures of the Dagster tests: the Dagster venv (orchestrate/.venv, built by
`make dagster-venv` when missing), a Dagster instance per test, and a way to
run tests/orchestrate/dagster_side.py in that venv."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import typing as t
from pathlib import Path

import pytest

from tests.demo import ROOT

ORCHESTRATE = ROOT / "orchestrate"
DAGSTER_BIN = ORCHESTRATE / ".venv" / "bin"
DAGSTER_SIDE = Path(__file__).with_name("dagster_side.py")
MELTANO_BIN = ROOT / ".venv" / "bin" / "meltano"


@pytest.fixture(scope="session")
def dagster_venv() -> Path:
    """orchestrate/.venv: `make test` builds it first; a lone pytest builds it here."""
    if not (ORCHESTRATE / ".venv" / ".installed").exists():
        if shutil.which("make") is None:
            pytest.skip("orchestrate/.venv is missing and make is not installed to build it")
        with (ORCHESTRATE / ".venv.lock").open("w") as lock:  # one builder among pytest workers
            fcntl.flock(lock, fcntl.LOCK_EX)
            proc = subprocess.run(["make", "-C", str(ROOT), "dagster-venv"], capture_output=True, text=True,
                                  timeout=900, check=False)
        if proc.returncode != 0:
            pytest.skip(f"the Dagster venv cannot be built here: {proc.stderr[-1000:]}")
    return DAGSTER_BIN


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    """A Dagster instance of its own, configured by orchestrate/dagster.yaml."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ORCHESTRATE / "dagster.yaml", home / "dagster.yaml")
    return home


def base_env(dagster_home: Path, sys_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home),
        "MELTANO_SYS_DIR_ROOT": str(sys_dir),
        "MELTANO_BIN": str(MELTANO_BIN),
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONPATH": str(ORCHESTRATE),
        **extra,
    }


def dagster_side(command: str, *args: str, env: dict[str, str], timeout: float = 600,
                 log: Path | None = None) -> dict[str, t.Any]:
    """Run dagster_side.py in the Dagster venv; its RESULT as a dict."""
    proc = subprocess.run([str(DAGSTER_BIN / "python"), str(DAGSTER_SIDE), command, *args],
                          cwd=ORCHESTRATE, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"dagster_side {command} {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return json.loads(lines[-1][len("RESULT "):])
