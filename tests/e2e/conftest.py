"""Fixtures and Meltano helpers of the end-to-end tests (test_meltano.py and
the cases it collects, test_backfill.py).

Each module gets its own MELTANO_SYS_DIR_ROOT (plugins, run folders, state)
and its own sandbox process; a module names its sandbox options by overriding
the ``sandbox_args`` fixture."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.demo import MELTANO, ROOT, Sandboxes, meltano, meltano_taps

ENVIRONMENT = "sandbox"


@pytest.fixture(scope="module", autouse=True)
def own_meltano_dir(tmp_path_factory):
    """The plugins, run folders and state of a module's tests live apart from
    the project's own .meltano (the demo's) and from other modules', so that
    none disturbs another."""
    previous = os.environ.get("MELTANO_SYS_DIR_ROOT")
    os.environ["MELTANO_SYS_DIR_ROOT"] = str(tmp_path_factory.mktemp("meltano"))
    yield
    if previous is None:
        del os.environ["MELTANO_SYS_DIR_ROOT"]
    else:
        os.environ["MELTANO_SYS_DIR_ROOT"] = previous


@pytest.fixture(scope="module")
def sandbox_args() -> tuple[str, ...]:
    """Extra arguments of `python -m tests.sandbox` (e.g. ``--set vendor.scale=N``)."""
    return ()


@pytest.fixture(scope="module")
def sandboxes(own_meltano_dir, sandbox_args, tmp_path_factory):
    """One sandbox process for every tap of meltano.yml, the project's plugins installed."""
    with Sandboxes(meltano_taps().values(), tmp_path_factory.mktemp("sandbox"), *sandbox_args) as running:
        meltano("install", env={**running.env(), "MELTANO_ENVIRONMENT": ENVIRONMENT}, quiet=True)
        yield running


def meltano_output(*args: str, env: dict, check: bool = True, timeout: float | None = None,
                   project: Path = ROOT, with_log: bool = False) -> str:
    """meltano's standard output (``with_log``: followed by its standard error, the plugins'
    log) in ``project``; with ``check``, fail with its output's tail when it fails."""
    proc = subprocess.run([MELTANO, *args], cwd=project, env={**os.environ, **env}, capture_output=True,
                          text=True, check=False, timeout=timeout)
    if check:
        assert proc.returncode == 0, f"meltano {' '.join(args)}:\n{(proc.stdout + proc.stderr)[-3000:]}"
    elif proc.returncode != 0:
        return ""
    return proc.stdout + proc.stderr if with_log else proc.stdout


def json_output(text: str) -> dict | None:
    """The JSON document in a meltano command's output (after any log lines), or None."""
    return json.loads(text[text.index("{"):]) if "{" in text else None
