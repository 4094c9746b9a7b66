"""make demo: every tap of meltano.yml, against the local sandbox, into DuckDB.

1. starts the vendor sandboxes (tests/sandbox) on free ports of 127.0.0.1
2. `meltano install`, then `meltano run --full-refresh all-taps` (each tap
   into target-duckdb) and prints the rows per table, read back from DuckDB
3. lets time pass in the sandbox (new and late-arriving records, sessions
   that close, reports that change), runs `meltano run all-taps` again from
   the saved state and prints what the second run added
4. stops the sandbox on exit, also on Ctrl-C or failure

The functions here are also what tests/e2e uses.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import typing as t
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MELTANO = str(BIN / "meltano")
JOB = "all-taps"
SANDBOX_URL = re.compile(r"\$\{?SANDBOX_([A-Z0-9]+)_URL\}?")


def meltano_taps(project: Path = ROOT) -> dict[str, str]:
    """{extractor name: sandbox vendor} for the extractors of the sandbox environment."""
    import yaml  # meltano's own dependency

    config = yaml.safe_load((project / "meltano.yml").read_text())
    (env,) = [e for e in config["environments"] if e["name"] == "sandbox"]
    taps = {}
    for extractor in env["config"]["plugins"]["extractors"]:
        match = SANDBOX_URL.search(json.dumps(extractor.get("config", {})))
        if match:
            taps[extractor["name"]] = match.group(1).lower()
    return taps


def sandbox_config(tap: str, url: str, project: Path = ROOT) -> dict:
    """The tap's config in meltano.yml's sandbox environment, pointed at ``url``."""
    import yaml

    config = yaml.safe_load((project / "meltano.yml").read_text())
    (env,) = [e for e in config["environments"] if e["name"] == "sandbox"]
    (extractor,) = [e for e in env["config"]["plugins"]["extractors"] if e["name"] == tap]
    return {
        key: SANDBOX_URL.sub(url, value) if isinstance(value, str) else value
        for key, value in extractor.get("config", {}).items()
    }


class Sandboxes:
    """The sandbox process: started on enter, stopped on exit."""

    def __init__(self, vendors: t.Iterable[str], state_dir: Path, *extra: str) -> None:
        self.vendors = sorted(set(vendors))
        self.state_dir = state_dir
        self.extra = extra
        self.proc: subprocess.Popen | None = None
        self.urls: dict[str, str] = {}

    def __enter__(self) -> Sandboxes:
        env_file = self.state_dir / "sandbox.json"
        env_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.sandbox", *self.vendors, "--state-dir", str(self.state_dir), *self.extra],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not env_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("the sandbox did not start")
            time.sleep(0.1)
        time.sleep(0.1)
        self.urls = {v: info["url"] for v, info in json.loads(env_file.read_text()).items()}
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def env(self) -> dict[str, str]:
        return {f"SANDBOX_{v.upper()}_URL": url for v, url in self.urls.items()}

    def admin(self, vendor: str, action: str, payload: object = None, method: str | None = None) -> t.Any:
        """Call a sandbox admin endpoint: GET, POST with ``payload``, or ``method``."""
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.urls[vendor]}/_sandbox/{action}", data=data,
            method=method or ("POST" if data is not None else "GET"),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def expected_counts(self) -> dict[str, dict[str, int]]:
        return {v: self.admin(v, "info").get("expected_counts", {}) for v in self.urls}


def meltano(*args: str, env: dict[str, str], project: Path = ROOT, quiet: bool = False) -> None:
    """Run meltano in the project; fail with its output's tail when it fails."""
    cmd = [MELTANO, *args]
    print(f"$ meltano {' '.join(args)}", flush=True)
    proc = subprocess.run(
        cmd, cwd=project, env={**os.environ, **env, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"},
        stdout=subprocess.PIPE if quiet else None, stderr=subprocess.STDOUT if quiet else None,
        text=True, check=False,
    )
    if proc.returncode != 0:
        tail = (proc.stdout or "")[-4000:]
        raise RuntimeError(f"meltano {' '.join(args)} failed with exit {proc.returncode}\n{tail}")


def warehouse_counts(path: Path) -> dict[tuple[str, str], int]:
    """Rows per (schema, table) in the DuckDB file."""
    import duckdb

    if not path.exists():
        return {}
    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not in ('information_schema', 'main', 'pg_catalog')"
        ).fetchall()
        return {(s, n): con.execute(f'select count(*) from "{s}"."{n}"').fetchone()[0] for s, n in tables}


def schema_of(tap: str) -> str:
    return tap.replace("-", "_")


def print_table(taps: dict[str, str], expected: dict, before: dict, after: dict | None = None,
                expected_after: dict | None = None) -> bool:
    """Print loaded vs expected rows per table; True when every count matches."""
    ok = True
    head = f"{'table':<52} {'run 1':>9} {'expected':>9}"
    if after is not None:
        head += f" {'run 2':>9} {'added':>7} {'expected':>9}"
    print(head)
    print("-" * len(head))
    for tap, vendor in taps.items():
        for stream, count in sorted(expected[vendor].items()):
            key = (schema_of(tap), stream)
            loaded = before.get(key, 0)
            line = f"{key[0] + '.' + stream:<52} {loaded:>9,} {count:>9,}"
            matches = loaded == count
            if after is not None and expected_after is not None:
                now = after.get(key, 0)
                want = expected_after[vendor].get(stream, count)
                line += f" {now:>9,} {now - loaded:>+7,} {want:>9,}"
                matches = now == want  # run 1 was checked in its own table
            ok &= matches
            print(line + ("" if matches else "   <- mismatch"))
    return ok


def main() -> int:
    taps = meltano_taps()
    if not taps:
        print("meltano.yml has no extractor in its sandbox environment", file=sys.stderr)
        return 1
    state_dir = ROOT / ".sandbox"
    warehouse = ROOT / "output" / "warehouse.duckdb"
    warehouse.parent.mkdir(exist_ok=True)
    for leftover in (warehouse, warehouse.with_suffix(".duckdb.wal")):
        leftover.unlink(missing_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with Sandboxes(taps.values(), state_dir) as sandboxes:
        env = {**sandboxes.env(), "MELTANO_ENVIRONMENT": "sandbox"}
        print("sandbox: " + ", ".join(f"{v} {u}" for v, u in sandboxes.urls.items()))
        meltano("install", env=env)
        meltano("run", "--full-refresh", JOB, env=env)
        expected = sandboxes.expected_counts()
        before = warehouse_counts(warehouse)
        print("\nFirst run: rows loaded per table (read back from DuckDB)\n")
        first_ok = print_table(taps, expected, before)

        print("\nTime passes in the sandbox: new and late records arrive ...\n")
        for vendor in sandboxes.urls:
            print(f"  {vendor}: {json.dumps(sandboxes.admin(vendor, 'advance', {}))[:200]}")
        meltano("run", JOB, env=env)
        after = warehouse_counts(warehouse)
        expected_after = sandboxes.expected_counts()
        print("\nSecond, incremental run from the saved state: what it added\n")
        second_ok = print_table(taps, expected, before, after, expected_after)
    print(f"\nWarehouse: {warehouse.relative_to(ROOT)}")
    if not (first_ok and second_ok):
        print("Some tables do not hold the rows the sandbox serves (see 'mismatch').", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
