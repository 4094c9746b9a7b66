"""make dagster: `dagster dev` on 127.0.0.1 over meltano.yml, against the sandbox.

1. starts the vendor sandboxes (as `make demo` does) on free ports of
   127.0.0.1, and one more sandbox per extra account of meltano.yml's sandbox
   environment (SANDBOX_ACTIVTRAK_EU_URL: an ActivTrak sandbox of its own)
2. `meltano install` in the project's .venv
3. `dagster dev -h 127.0.0.1 -p $DAGSTER_PORT` (default 3000) from
   orchestrate/.venv with DAGSTER_HOME=orchestrate/.dagster (orchestrate/dagster.yaml):
   the UI lists meltano.yml's jobs and its schedules, which run (hourly, into
   output/warehouse.duckdb) while it is up
4. stops everything on Ctrl-C

Run with the project's .venv: `.venv/bin/python -m orchestrate.dev`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.demo import ROOT, Sandboxes, meltano, meltano_taps
from tests.sandbox import start, vendors

ORCHESTRATE = ROOT / "orchestrate"
DAGSTER = ORCHESTRATE / ".venv" / "bin" / "dagster"
DAGSTER_HOME = ORCHESTRATE / ".dagster"
URL_VARIABLE = re.compile(r"\$\{?SANDBOX_([A-Z0-9_]+)_URL\}?")


def extra_accounts(project: Path = ROOT) -> dict[str, str]:
    """{SANDBOX_<ACCOUNT>_URL variable: vendor} for the sandbox URLs no vendor sandbox serves."""
    import yaml

    config = yaml.safe_load((project / "meltano.yml").read_text())
    (env,) = [e for e in config["environments"] if e["name"] == "sandbox"]
    known = vendors()
    found = {}
    for name in URL_VARIABLE.findall(json.dumps(env.get("config", {}))):
        if name.lower() in known:
            continue
        vendor = max((v for v in known if name.lower().startswith(v + "_")), key=len, default=None)
        if vendor:
            found[f"SANDBOX_{name}_URL"] = vendor
    return found


def _default_signals() -> None:
    # a shell without job control starts background commands with SIGINT ignored
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def main() -> int:
    if not DAGSTER.exists():
        print("orchestrate/.venv is missing: run `make dagster`", file=sys.stderr)
        return 1
    port = os.environ.get("DAGSTER_PORT", "3000")
    DAGSTER_HOME.mkdir(exist_ok=True)
    shutil.copy(ORCHESTRATE / "dagster.yaml", DAGSTER_HOME / "dagster.yaml")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    accounts = {}
    with Sandboxes(meltano_taps().values(), ROOT / ".sandbox") as sandboxes:
        try:
            for seed, (variable, vendor) in enumerate(sorted(extra_accounts().items()), start=11):
                accounts[variable] = start(vendor, seed=seed)
            env = {
                **sandboxes.env(),
                **{variable: server.url for variable, server in accounts.items()},
                "MELTANO_ENVIRONMENT": "sandbox",
            }
            for variable, url in sorted(env.items()):
                print(f"{variable}={url}")
            meltano("install", env=env)
            print(f"\nDagster UI: http://127.0.0.1:{port} (Ctrl-C stops it and the sandbox)\n", flush=True)
            # its own process group, stopped as a whole: Ctrl-C (or SIGTERM) here
            # becomes a SIGINT to dagster dev, its graceful shutdown
            proc = subprocess.Popen(
                [str(DAGSTER), "dev", "-h", "127.0.0.1", "-p", port,
                 "-m", "meltano_dagster.definitions", "-d", str(ORCHESTRATE)],
                cwd=ROOT,
                env={**os.environ, **env, "DAGSTER_HOME": str(DAGSTER_HOME),
                     "MELTANO_PROJECT_ROOT": str(ROOT)},
                start_new_session=True, preexec_fn=_default_signals,
            )
            try:
                return proc.wait()
            finally:
                _stop(proc)
        finally:
            for server in accounts.values():
                server.stop()


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
