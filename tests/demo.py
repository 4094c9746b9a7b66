"""make demo: every tap of meltano.yml, against the local sandbox, into DuckDB.

1. starts the vendor sandboxes (tests/sandbox) on free ports of 127.0.0.1
2. `meltano install`, then the tasks of the `all-taps-modeled` job one by one
   (`meltano run --full-refresh <tap> target-duckdb` for each tap, then
   `dbt-duckdb:build`), one line per tap and per dbt step with rows and
   seconds; Meltano's own logs go to output/meltano.log. It prints the rows
   per table, read back from DuckDB, against what the sandbox served
3. lets time pass in the sandbox (new and late-arriving records, sessions
   that close, reports that change), runs the tasks again from the saved
   state and prints what the second run added
4. ends with the models: privileged sessions per vendor, the users with the
   most privileged-session hours, people matched across vendors
5. stops the sandbox on exit, also on Ctrl-C or failure

The functions here are also what tests/e2e uses.
"""

from __future__ import annotations

import contextlib
import datetime as dt
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
MODELED_JOB = "all-taps-modeled"
SANDBOX_URL = re.compile(r"\$\{?SANDBOX_([A-Z0-9]+)_URL\}?")


def link_packages(project: Path) -> None:
    """Symlink the repository's packages (the taps, the loader packages: what
    meltano.yml installs with ``pip_url: -e ./<folder>``) into another project folder."""
    for package in sorted(ROOT.glob("*/pyproject.toml")):
        (project / package.parent.name).symlink_to(package.parent)


def project_config(project: Path = ROOT) -> dict:
    """The project's meltano.yml, parsed (a new dict each call)."""
    import yaml  # meltano's own dependency

    return t.cast(dict, yaml.safe_load((project / "meltano.yml").read_text()))


def meltano_taps(project: Path = ROOT) -> dict[str, str]:
    """{extractor name: sandbox vendor} for the extractors of the sandbox environment."""
    config = project_config(project)
    (env,) = [e for e in config["environments"] if e["name"] == "sandbox"]
    taps = {}
    for extractor in env["config"]["plugins"]["extractors"]:
        match = SANDBOX_URL.search(json.dumps(extractor.get("config", {})))
        if match:
            taps[extractor["name"]] = match.group(1).lower()
    return taps


def plugin_executable(name: str, project: Path = ROOT) -> str:
    """The executable meltano.yml gives the plugin ``name`` (its name when it sets none)."""
    for plugins in project_config(project)["plugins"].values():
        for plugin in plugins:
            if plugin["name"] == name:
                return str(plugin.get("executable", name))
    raise KeyError(name)


def sandbox_config(tap: str, url: str, project: Path = ROOT) -> dict:
    """The tap's config in meltano.yml's sandbox environment, pointed at ``url``."""
    config = project_config(project)
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
        self.proc: subprocess.Popen | None = None
        self.urls: dict[str, str] = {}
        #: settings the taps and the sandbox must read alike. tap-sessionreports' default
        #: start_date (midnight UTC, 30 days back) is read from the wall clock by the tap at each
        #: run and by its sandbox at each info(), over 45 days of data: the counts differed when
        #: midnight UTC fell between the two. Both get the same start_date, taken once.
        self.pinned: dict[str, str] = {}
        if "sessionreports" in self.vendors and not any(a.startswith("sessionreports.start_date=") for a in extra):
            midnight = dt.datetime.combine(dt.datetime.now(dt.timezone.utc).date(), dt.time(), dt.timezone.utc)
            start = (midnight - dt.timedelta(days=30)).isoformat()
            self.pinned["TAP_SESSIONREPORTS_START_DATE"] = start
            extra = (*extra, "--set", f"sessionreports.start_date={start}")
        self.extra = extra

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
        return {**{f"SANDBOX_{v.upper()}_URL": url for v, url in self.urls.items()}, **self.pinned}

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


def job_tasks(job: str, project: Path = ROOT) -> list[str]:
    """The tasks of a job of meltano.yml, e.g. ['tap-x target-duckdb', ..., 'dbt-duckdb:build']."""
    (found,) = [j for j in project_config(project)["jobs"] if j["name"] == job]
    return list(found["tasks"])


def meltano_logged(*args: str, env: dict[str, str], log: Path, project: Path = ROOT) -> float:
    """Run meltano with its output appended to ``log``; seconds taken. Fails with the log's tail."""
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ meltano {' '.join(args)}\n")
        out.flush()
        proc = subprocess.run(
            [MELTANO, *args], cwd=project, stdout=out, stderr=subprocess.STDOUT, text=True, check=False,
            env={**os.environ, **env, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"},
        )
    if proc.returncode != 0:
        tail = log.read_text()[-4000:]
        raise RuntimeError(f"meltano {' '.join(args)} failed with exit {proc.returncode} (log: {log})\n{tail}")
    return time.monotonic() - started


def dbt_steps(run_results: Path, warehouse: Path) -> list[str]:
    """One line per dbt step of a build: the seed, the staging views, each end model with its rows, the tests."""
    import duckdb

    results = json.loads(run_results.read_text())["results"]
    groups: dict[str, list[dict]] = {}
    for result in results:
        kind, _, name = result["unique_id"].split(".")[:3]
        if kind == "model" and not name.startswith(("stg_", "int_")):
            groups[name] = [result]
        else:
            label = {"seed": "seeds", "test": "tests"}.get(kind, "staging views")
            groups.setdefault(label, []).append(result)
    lines = []
    with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
        order = {"seeds": 0, "staging views": 1, "tests": 3}
        for label, members in sorted(groups.items(), key=lambda item: order.get(item[0], 2)):
            seconds = sum(r.get("execution_time") or 0 for r in members)
            failed = [r["unique_id"] for r in members if r["status"] not in ("success", "pass")]
            status = "ok" if not failed else f"{len(failed)} failed"
            if label in ("seeds", "tests", "staging views"):
                count, unit = len(members), "run" if label != "tests" else "pass"
            else:
                count, unit = con.execute(f"select count(*) from analytics.{label}").fetchone()[0], "rows"
            lines.append(f"    {label:<46} {count:>9,} {unit:<4} {seconds:>5.1f} s  {status}")
    return lines


def run_tasks(tasks: list[str], env: dict[str, str], log: Path, warehouse: Path, full_refresh: bool = False) -> None:
    """Each task of a job on its own (same state ids as the job), one line per tap and per dbt step."""
    for task in tasks:
        if ":" in task:  # a utility command, e.g. dbt-duckdb:build
            seconds = meltano_logged("invoke", task, env=env, log=log)
            print(f"  {task:<48} {'':>9} {'':<4} {seconds:>5.1f} s")
            target = Path(env.get("DBT_DUCKDB_TARGET_PATH", ROOT / "transform" / "target"))
            for line in dbt_steps(target / "run_results.json", warehouse):
                print(line)
            continue
        tap = task.split()[0]
        before = sum(n for (schema, _), n in warehouse_counts(warehouse).items() if schema == schema_of(tap))
        seconds = meltano_logged("run", *(["--full-refresh"] if full_refresh else []), *task.split(), env=env, log=log)
        after = sum(n for (schema, _), n in warehouse_counts(warehouse).items() if schema == schema_of(tap))
        print(f"  {task:<48} {after - before:>+9,} rows {seconds:>5.1f} s", flush=True)


def print_models(warehouse: Path) -> None:
    """What the end models say: sessions per vendor, top users by hours, people matched."""
    import duckdb

    with contextlib.closing(duckdb.connect(str(warehouse), read_only=True)) as con:
        print(f"{'privileged sessions per vendor':<40} {'sessions':>9} {'open':>6} {'hours':>9}")
        for vendor, sessions, open_, hours in con.execute(
            "select vendor, count(*), count(*) filter (where is_open), coalesce(sum(duration_seconds), 0) / 3600 "
            "from analytics.privileged_sessions group by vendor order by vendor"
        ).fetchall():
            print(f"  {vendor:<38} {sessions:>9,} {open_:>6,} {hours:>9,.1f}")
        print(f"\n{'users with the most privileged-session hours':<40} {'vendors':<22} {'sessions':>9} {'hours':>9}")
        for name, vendors, sessions, hours in con.execute(
            "select coalesce(p.display_name, p.person_key), p.vendors, count(*), "
            "sum(s.duration_seconds) / 3600 as hours "
            "from analytics.privileged_sessions s join analytics.people p on p.person_id = s.person_id "
            "group by p.person_id, p.display_name, p.person_key, p.vendors order by hours desc nulls last limit 5"
        ).fetchall():
            print(f"  {name[:38]:<38} {vendors[:22]:<22} {sessions:>9,} {hours or 0:>9,.1f}")
        people, matched, identities = con.execute(
            "select count(*), count(*) filter (where is_matched_across_vendors), sum(identity_count) "
            "from analytics.people"
        ).fetchone()
        print(f"\npeople: {people:,} from {identities:,} vendor identities; {matched:,} matched across vendors "
              "(rules: transform/models/marts/_marts.yml; overrides: transform/seeds/person_overrides.csv)")


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
    log = warehouse.parent / "meltano.log"
    log.unlink(missing_ok=True)
    tasks = job_tasks(MODELED_JOB)
    with Sandboxes(taps.values(), state_dir) as sandboxes:
        env = {**sandboxes.env(), "MELTANO_ENVIRONMENT": "sandbox", "DBT_DUCKDB_PATH": str(warehouse),
               "DBT_DUCKDB_TARGET_PATH": str(warehouse.parent / "dbt"),
               "DBT_DUCKDB_LOG_PATH": str(warehouse.parent / "dbt")}
        print("sandbox: " + ", ".join(f"{v} {u}" for v, u in sandboxes.urls.items()))
        print(f"Meltano's logs: {log.relative_to(ROOT)}\n")
        print(f"  meltano install {meltano_logged('install', env=env, log=log):>47.1f} s")
        print(f"\nFirst run: the tasks of {MODELED_JOB}, each tap from the start\n")
        run_tasks(tasks, env, log, warehouse, full_refresh=True)
        expected = sandboxes.expected_counts()
        before = warehouse_counts(warehouse)
        print("\nFirst run: rows loaded per table (read back from DuckDB)\n")
        first_ok = print_table(taps, expected, before)

        print("\nTime passes in the sandbox: new and late records arrive ...\n")
        for vendor in sandboxes.urls:
            print(f"  {vendor}: {json.dumps(sandboxes.admin(vendor, 'advance', {}))[:200]}")
        print(f"\nSecond, incremental run of {MODELED_JOB} from the saved state\n")
        run_tasks(tasks, env, log, warehouse)
        after = warehouse_counts(warehouse)
        expected_after = sandboxes.expected_counts()
        print("\nSecond, incremental run from the saved state: what it added\n")
        second_ok = print_table(taps, expected, before, after, expected_after)
    print("\nThe models (schema analytics)\n")
    print_models(warehouse)
    print(f"\nWarehouse: {warehouse.relative_to(ROOT)}; dbt docs: meltano invoke dbt-duckdb:docs-generate")
    if not (first_ok and second_ok):
        print("Some tables do not hold the rows the sandbox serves (see 'mismatch').", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
