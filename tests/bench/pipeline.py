"""The whole pipeline: `meltano run tap-x target-postgres` and `meltano run
tap-x target-duckdb` of the project's meltano.yml against the sandbox, beside
`meltano invoke tap-x` alone and the plain client of the tap benches reading
the same records (the yardstick no setting of meltano.yml changes).

    python -m tests.bench --pipeline-only [VENDOR ...] [--scale-factor 0.1]
                          [--baseline 2470e2e] [--variants [WORD ...]] [--repeat N]

For one large stream of each tap (the stream of its tap bench case):

- CPU seconds of the whole process tree (meltano, the tap, its discovery
  run, the loader and anything they start), from ``wait4`` of the meltano
  process, which reaps them all; per record, and as ratios: plain client over
  pipeline, and ``meltano invoke`` of the tap alone over pipeline;
- wall time;
- the peak RSS of each process (tap, loader, meltano): every 50 ms the
  process tree is walked in /proc and each process's ``VmHWM`` read. VmHWM
  is the high-water mark of the process's own address space since its exec,
  so, unlike ``ru_maxrss``, it does not inherit the size of the benchmark
  that forked it, and no peak between two samples is missed.

The rows in the warehouse are counted after each run and must equal the
records the sandbox holds for the stream; a mismatch fails the bench.

Into target-postgres the pipeline runs the extractor's ``--batch`` plugin
of meltano.yml when the project defines one (BATCH messages, files in a
folder of the bench's own, counted and removed after the run), as the
PostgreSQL jobs do; a project without one (a baseline) runs the extractor.

``--repeat N`` runs every row N times, in N interleaved rounds, and keeps
the run with the least CPU (the peak RSS: the highest of the N): the
machine's noise only ever adds CPU, so the best of a few is the steadiest
figure to take a ratio of.

``--baseline REV`` adds the same pipelines with meltano.yml as it was at
commit REV (a copy of the project in a temporary folder, with the taps
linked in), so that a change of settings is measured against the old ones
in the same run, on the same machine. ``--variants`` adds rows with one
loader choice of meltano.yml reverted at a time (through the loader's
environment variables, or the plain extractor instead of its ``--batch``
plugin: RECORD messages), to show what each costs and saves.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import glob
import os
import subprocess
import sys
import tempfile
import threading
import time
import typing as t
import uuid
from pathlib import Path

from tests.bench.common import ROOT, measure, python_module
from tests.demo import link_packages, project_config
from tests.sandbox import start

MELTANO = str(Path(sys.executable).parent / "meltano")
SAMPLE_SECONDS = 0.05
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
LOADERS = ("target-postgres", "target-duckdb")
BATCH_LOADERS = ("target-postgres",)  # the loaders that read BATCH messages: the --batch extractors
RECORD_MESSAGES = {"RECORD_MESSAGES": "1"}  # a variant's marker: the extractor, not its --batch plugin

# Loader settings of meltano.yml reverted one at a time by --variants:
# (label, loader, environment overrides restoring the loader's own default).
VARIANTS: list[tuple[str, str, dict[str, str]]] = [
    ("RECORD messages (not the --batch extractor)", "target-postgres", RECORD_MESSAGES),
    ("validate_records on", "target-postgres", {"TARGET_POSTGRES_VALIDATE_RECORDS": "true"}),
    ("use_copy off", "target-postgres", {"TARGET_POSTGRES_USE_COPY": "false"}),
    ("no record metadata, activate_version off", "target-postgres",
     {"TARGET_POSTGRES_ADD_RECORD_METADATA": "false", "TARGET_POSTGRES_ACTIVATE_VERSION": "false"}),
    ("batch_size_rows 100,000", "target-duckdb", {"TARGET_DUCKDB_BATCH_SIZE_ROWS": "100000"}),
    ("batch_size_rows 10,000", "target-duckdb", {"TARGET_DUCKDB_BATCH_SIZE_ROWS": "10000"}),
    ("DuckDB settings default", "target-duckdb", {"TARGET_DUCKDB_SETTINGS": "{}"}),
    ("row_group_size 122,880 (DuckDB's)", "target-duckdb", {"TARGET_DUCKDB_ROW_GROUP_SIZE": "122880"}),
    ("release_memory_mb 32", "target-duckdb", {"TARGET_DUCKDB_RELEASE_MEMORY_MB": "32"}),
    ("no memory release", "target-duckdb", {"TARGET_DUCKDB_RELEASE_MEMORY_MB": "1000000"}),
    ("elt.buffer_size 100 MiB", "target-duckdb", {"MELTANO_ELT_BUFFER_SIZE": "104857600"}),
]


def bytecode_env(sys_dir: Path) -> dict[str, str]:
    """Byte-code for every run, compiled once into a folder of the bench's own.

    Without it each process compiles every module it imports, each run, here:
    this machine sets PYTHONDONTWRITEBYTECODE and Meltano installs plugins with
    uv, which writes no .pyc files; that is several CPU-seconds a process
    (meltano, the tap, the loader) that a plugin installed by pip, or by
    `UV_COMPILE_BYTECODE=1 meltano install`, never pays after its first run.
    The bench measures the pipeline, not the byte-code compiler."""
    return {"PYTHONPYCACHEPREFIX": str(sys_dir.parent / "pycache"), "PYTHONDONTWRITEBYTECODE": ""}


# --- measuring a process tree ----------------------------------------------------------------------


@dataclasses.dataclass
class TreeMeasure:
    cpu_seconds: float  # the whole tree, from wait4
    wall_seconds: float
    peak_rss_mb: dict[str, float]  # role (tap, loader, meltano) -> largest VmHWM of a process of it
    cpu_by_role: dict[str, float]  # role -> CPU seconds, as last sampled (within 50 ms of its exit)


def _role(argv: list[str], parent_role: str | None) -> str:
    for arg in argv[:3]:
        name = os.path.basename(arg)
        if name.startswith("tap-"):
            return "tap"
        if name.startswith("target-"):
            return "loader"
        if name == "meltano":
            return "meltano"
    return parent_role or "other"


def _read(path: str) -> str | None:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode(errors="replace")
    except OSError:
        return None


class TreeSampler(threading.Thread):
    """Walks the process tree under ``root`` every 50 ms; per process: its
    role, VmHWM and CPU ticks (the last values seen)."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.done = threading.Event()
        self.seen: dict[tuple[int, str], dict[str, t.Any]] = {}

    def run(self) -> None:
        while not self.done.is_set():
            self.sample()
            self.done.wait(SAMPLE_SECONDS)

    def sample(self) -> None:
        todo: list[tuple[int, str | None]] = [(self.root, None)]
        while todo:
            pid, parent_role = todo.pop()
            stat = _read(f"/proc/{pid}/stat")
            if stat is None:
                continue
            fields = stat[stat.rindex(")") + 2:].split()
            key = (pid, fields[19])  # pid and start time: a reused pid is another process
            cmdline = _read(f"/proc/{pid}/cmdline") or ""
            entry = self.seen.get(key)
            if entry is None or (cmdline and entry["cmdline"] != cmdline):  # (a zombie has no cmdline)
                # new, or it has exec'd since (a fork of meltano becoming the tap): a new address space
                entry = self.seen[key] = {"role": _role(cmdline.split("\0"), parent_role), "hwm_kb": 0,
                                          "ticks": 0, "cmdline": cmdline}
            entry["ticks"] = int(fields[11]) + int(fields[12])
            for line in (_read(f"/proc/{pid}/status") or "").splitlines():
                if line.startswith("VmHWM:"):
                    entry["hwm_kb"] = max(entry["hwm_kb"], int(line.split()[1]))
                    break
            for children in glob.glob(f"/proc/{pid}/task/*/children"):
                todo.extend((int(child), entry["role"]) for child in (_read(children) or "").split())

    def peaks(self) -> tuple[dict[str, float], dict[str, float]]:
        rss: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for entry in self.seen.values():
            rss[entry["role"]] = max(rss.get(entry["role"], 0.0), entry["hwm_kb"] / 1024)
            cpu[entry["role"]] = cpu.get(entry["role"], 0.0) + entry["ticks"] / CLOCK_TICKS
        return rss, cpu


def measure_tree(cmd: t.Sequence[str], env: dict[str, str], cwd: Path, stdout: t.Any = subprocess.DEVNULL
                 ) -> TreeMeasure:
    """Run ``cmd``; the CPU time of it and every descendant it waited for
    (wait4), its wall time, and each process's peak RSS, sampled."""
    with tempfile.TemporaryFile() as log:
        begin = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **env}, stdout=stdout, stderr=log,
                                start_new_session=True)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            sampler.done.set()
            sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - begin
        if proc.returncode != 0:
            log.seek(0)
            tail = log.read()[-4000:].decode(errors="replace")
            raise RuntimeError(f"{' '.join(cmd[:4])} exited {proc.returncode}:\n{tail}")
    rss, cpu = sampler.peaks()
    return TreeMeasure(usage.ru_utime + usage.ru_stime, wall, rss, cpu)


# --- the cases: one large stream per tap -----------------------------------------------------------


@dataclasses.dataclass
class Case:
    tap: str
    vendor: str
    stream: str
    records: int  # what the sandbox holds for the stream in the configured range
    env: dict[str, str]  # meltano's environment: the sandbox's address, the range, the selection
    plain: list[str]  # the plain client's command
    plain_records: int = 0  # what the plain client reads, when not ``records``


def _meltano_env(tap: str, vendor: str, server: t.Any, stream: str, **settings: str) -> dict[str, str]:
    prefix = tap.upper().replace("-", "_")
    return {
        f"SANDBOX_{vendor.upper()}_URL": server.url,
        f"{prefix}__SELECT": f'["{stream}.*"]',
        **{f"{prefix}_{key.upper()}": value for key, value in settings.items()},
    }


def _activtrak(scale_factor: float) -> tuple[t.Any, Case]:
    records = max(int(200_000 * scale_factor), 1000)
    server = start("activtrak", scale=records, days=30)
    first = server.app.first_day.isoformat()
    env = _meltano_env("tap-activtrak", "activtrak", server, "activity_log", start_date=first)
    plain = python_module("tests.bench.plain_activtrak", server.url, server.app.token, first)
    return server, Case("tap-activtrak", "activtrak", "activity_log", records, env, plain)


def _controlio(scale_factor: float) -> tuple[t.Any, Case]:
    records = max(int(200_000 * scale_factor), 1000)
    server = start("controlio", scale=records, days=30)
    app = server.app
    env = _meltano_env("tap-controlio", "controlio", server, "detailed_activities",
                       start_date=app.first_day.isoformat())
    plain = python_module("tests.bench.plain_controlio", server.url, app.token, app.first_day.isoformat(),
                          app.today.isoformat())
    return server, Case("tap-controlio", "controlio", "detailed_activities", records, env, plain)


def _ekran(scale_factor: float) -> tuple[t.Any, Case]:
    scale = max(int(100_000 * scale_factor), 1000)
    server = start("ekran", scale=scale, days=30)
    app = server.app
    start_date = dt.datetime.combine(app.first_day, dt.time(), dt.timezone.utc)
    end_date = dt.datetime.fromtimestamp(app.created, dt.timezone.utc)  # a fixed end, as the tap bench
    env = _meltano_env("tap-ekran", "ekran", server, "sessions", start_date=start_date.isoformat(),
                       end_date=end_date.isoformat())
    records = len(app.select(start_date.timestamp(), end_date.timestamp()))
    plain = python_module("tests.bench.plain_ekran", server.url, app.token, start_date.isoformat(),
                          end_date.isoformat())
    return server, Case("tap-ekran", "ekran", "sessions", records, env, plain)


def _sessionreports(scale_factor: float) -> tuple[t.Any, Case]:
    rows = max(int(200_000 * scale_factor), 1000)
    start_date = "2000-01-01T00:00:00Z"
    server = start("sessionreports", scale=1, days=2, definitions=0, subscriptions=0, rows_per_report=rows)
    env = _meltano_env("tap-sessionreports", "sessionreports", server, "report_rows", start_date=start_date)
    # the sandbox's name and token in meltano.yml before c14d1fa (a --baseline)
    env.update({"SANDBOX_FUDO_URL": server.url, "TAP_SESSIONREPORTS_API_TOKEN": server.app.token})
    plain = python_module("tests.bench.plain_sessionreports", "report_rows", server.url, server.app.token, start_date)
    return server, Case("tap-sessionreports", "sessionreports", "report_rows", rows, env, plain)


def _beyondtrust(scale_factor: float) -> tuple[t.Any, Case]:
    count = max(int(20_000 * scale_factor), 1000)
    server = start("beyondtrust", scale=count, days=30, archive_count=0)
    app = server.app
    # the tap reads the ended sessions and, in a start-time pass, those without an end; the plain
    # client the ended ones: its CPU is compared per record
    ended = sum(1 for i in range(app.session_total) if app.session_times(i)[1] is not None)
    records = app.info()["expected_counts"]["support_sessions"]
    start_iso = dt.datetime.fromtimestamp(app.first_ts, dt.timezone.utc).isoformat()
    # one answer for the whole range, as the plain client asks
    env = _meltano_env("tap-beyondtrust", "beyondtrust", server, "support_sessions", start_date=start_iso,
                       window_days="40")
    creds = app.info()["credentials"]
    plain = python_module("tests.bench.plain_beyondtrust", "sessions", server.url, creds["client_id"],
                          creds["client_secret"], str(app.first_ts), str(int(time.time())))
    return server, Case("tap-beyondtrust", "beyondtrust", "support_sessions", records, env, plain, ended)


CASES: dict[str, t.Callable[[float], tuple[t.Any, Case]]] = {
    "activtrak": _activtrak,
    "beyondtrust": _beyondtrust,
    "controlio": _controlio,
    "ekran": _ekran,
    "sessionreports": _sessionreports,
}


# --- projects, warehouses and the table ------------------------------------------------------------


@dataclasses.dataclass
class PipelineResult:
    tap: str
    stream: str
    pipeline: str  # "plain client", "meltano invoke", "target-postgres", ...
    records: int
    cpu_seconds: float
    wall_seconds: float
    peak_rss_mb: dict[str, float]
    plain_cpu: float
    invoke_cpu: float | None
    cpu_by_role: dict[str, float] = dataclasses.field(default_factory=dict)


class Project:
    """A Meltano project to run: this one, or a copy of its meltano.yml at a
    past commit with the taps linked in. Plugins live in ``sys_dir``."""

    def __init__(self, sys_dir: Path, rev: str | None = None, text: str | None = None,
                 label: str | None = None) -> None:
        self.rev = rev
        self.sys_dir = sys_dir
        self.root = ROOT
        self._label = label
        if rev is not None:
            text = subprocess.run(["git", "show", f"{rev}:meltano.yml"], cwd=ROOT, capture_output=True,
                                  text=True, check=True).stdout
        if text is not None:
            self.root = Path(tempfile.mkdtemp(prefix="meltano-bench-"))
            (self.root / "meltano.yml").write_text(text)
            link_packages(self.root)

    def extractors(self) -> set[str]:
        return {plugin["name"] for plugin in project_config(self.root)["plugins"]["extractors"]}

    def extractor(self, tap: str, loader: str) -> str:
        """The extractor the project runs with ``loader``: the tap's ``--batch``
        plugin for a loader that reads BATCH messages, when there is one."""
        if loader in BATCH_LOADERS and f"{tap}--batch" in self.extractors():
            return f"{tap}--batch"
        return tap

    def env(self) -> dict[str, str]:
        return {"MELTANO_SYS_DIR_ROOT": str(self.sys_dir), "MELTANO_ENVIRONMENT": "sandbox",
                "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
                **bytecode_env(self.sys_dir)}

    def install(self, plugins: t.Sequence[str]) -> None:
        env = {**os.environ, **self.env()}
        proc = subprocess.run([MELTANO, "install", *plugins], cwd=self.root, env=env,
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"meltano install failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
        # compiled once, as pip does at install (see bytecode_env)
        subprocess.run([sys.executable, "-m", "compileall", "-q", "-j", "1", str(self.sys_dir),
                        str(Path(sys.executable).parents[1] / "lib")], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)

    @property
    def label(self) -> str:
        if self._label:
            return f", {self._label}"
        return f" (meltano.yml at {self.rev})" if self.rev else ""


def _postgres_rows(server: t.Any, database: str, schema: str, table: str) -> int:
    return int(server.sql(f'select count(*) from "{schema}"."{table}"', database)[0][0])


def _duckdb_rows(path: Path, schema: str, table: str) -> int:
    import duckdb

    with contextlib.closing(duckdb.connect(str(path), read_only=True)) as con:
        return con.execute(f'select count(*) from "{schema}"."{table}"').fetchone()[0]


def _run_pipeline(project: Project, case: Case, loader: str, postgres: t.Any, tmp: Path,
                  overrides: dict[str, str] | None = None) -> TreeMeasure:
    schema = case.tap.replace("-", "_")
    overrides = dict(overrides or {})
    extractor = case.tap if overrides.pop("RECORD_MESSAGES", None) else project.extractor(case.tap, loader)
    batches = tmp / f"batches-{uuid.uuid4().hex[:8]}"
    env = {**project.env(), **case.env, **postgres.meltano_env(),
           "TARGET_DUCKDB_FILEPATH": str(tmp / f"{uuid.uuid4().hex}.duckdb")}
    if extractor != case.tap:  # the BATCH files in a folder of this run's own
        env[f"{extractor.upper().replace('-', '_')}_BATCH_CONFIG_STORAGE_ROOT"] = batches.as_uri()
    database = f"bench_{uuid.uuid4().hex[:12]}"
    postgres.sql(f"create database {database}", database="postgres")
    env["TARGET_POSTGRES_DATABASE"] = database
    env.update(overrides)
    suffix = uuid.uuid4().hex[:8]
    result = measure_tree([MELTANO, "run", "--full-refresh", "--state-id-suffix", suffix, extractor, loader],
                          env, project.root)
    files = sorted(batches.glob("*")) if batches.exists() else []
    for file in files:
        file.unlink()
    if extractor != case.tap and not files:
        raise RuntimeError(f"{extractor} {loader}: no BATCH files written")
    if loader == "target-postgres":
        loaded = _postgres_rows(postgres, database, schema, case.stream)
        postgres.sql(f"drop database {database}", database="postgres")
    else:
        loaded = _duckdb_rows(Path(env["TARGET_DUCKDB_FILEPATH"]), schema, case.stream)
        Path(env["TARGET_DUCKDB_FILEPATH"]).unlink()
    if loaded != case.records:
        raise RuntimeError(f"{case.tap} {loader}{project.label}: {loaded:,} rows in {schema}.{case.stream}, "
                           f"the sandbox holds {case.records:,}")
    return result


def best_of(runs: t.Sequence[TreeMeasure]) -> TreeMeasure:
    """The run with the least CPU time (as timeit takes the best of its repeats: the others only
    add what the shared machine took meanwhile), with the highest peak RSS of each role in any run."""
    best = min(runs, key=lambda run: run.cpu_seconds)
    roles = {role for run in runs for role in run.peak_rss_mb}
    peaks = {role: max(run.peak_rss_mb.get(role, 0.0) for run in runs) for role in roles}
    return dataclasses.replace(best, peak_rss_mb=peaks)


def run(scale_factor: float = 1.0, vendors: t.Sequence[str] = (), baseline: str | None = None,
        variants: bool | t.Sequence[str] = False, report: t.Callable[[list[PipelineResult]], None] | None = None,
        repeat: int = 1) -> list[PipelineResult]:
    from tests.e2e.pgserver import PostgresServer

    chosen = [v for v in CASES if not vendors or v in vendors]
    results: list[PipelineResult] = []
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp_name:
        tmp = Path(tmp_name)
        current = Project(tmp / "meltano")
        projects = [current] + ([Project(tmp / "meltano", baseline)] if baseline else [])
        taps = [CASES_TAP[v] for v in chosen]
        for project in projects:
            project.install(sorted({*taps, *(project.extractor(tap, loader) for tap in taps for loader in LOADERS),
                                    *LOADERS}))
        postgres = PostgresServer().start()
        try:
            for vendor in chosen:
                server, case = CASES[vendor](scale_factor)
                try:
                    plain = measure(case.plain, env=bytecode_env(current.sys_dir), repeat=repeat)
                    # the plain client's CPU for the pipeline's records, at its CPU per record
                    plain_cpu = plain.cpu_seconds * case.records / (case.plain_records or case.records)
                    row: dict[str, t.Any] = {"tap": case.tap, "stream": case.stream, "records": case.records,
                           "plain_cpu": plain_cpu}
                    results.append(PipelineResult(pipeline="plain client", cpu_seconds=plain_cpu,
                                                  wall_seconds=plain.wall_seconds,
                                                  peak_rss_mb={"tap": plain.peak_rss_mb}, invoke_cpu=None, **row))
                    invoke = best_of([measure_tree([MELTANO, "invoke", case.tap], {**current.env(), **case.env},
                                                   current.root) for _ in range(repeat)])
                    results.append(PipelineResult(pipeline="meltano invoke", cpu_seconds=invoke.cpu_seconds,
                                                  wall_seconds=invoke.wall_seconds, peak_rss_mb=invoke.peak_rss_mb,
                                                  invoke_cpu=invoke.cpu_seconds, cpu_by_role=invoke.cpu_by_role,
                                                  **row))
                    runs: list[tuple[str, Project, str, dict[str, str]]] = []
                    for loader in LOADERS:
                        for project in projects:
                            label = loader if project.extractor(case.tap, loader) == case.tap else f"{loader}, BATCH"
                            runs.append((f"{label}{project.label}", project, loader, {}))
                        if variants:
                            words = [] if variants is True else list(variants)
                            runs.extend((f"{loader}, {label}", current, loader, env)
                                        for label, target, env in VARIANTS if target == loader
                                        and (not words or any(word in label for word in words)))
                    # with repeat, the rounds interleave (each pipeline once a round), so that a slower
                    # stretch of the machine weighs on every pipeline alike
                    measured: dict[str, list[TreeMeasure]] = {label: [] for label, *_ in runs}
                    for _ in range(repeat):
                        for label, project, loader, overrides in runs:
                            measured[label].append(_run_pipeline(project, case, loader, postgres, tmp, overrides))
                    for label, *_ in runs:
                        done = best_of(measured[label])
                        results.append(PipelineResult(pipeline=label, cpu_seconds=done.cpu_seconds,
                                                      wall_seconds=done.wall_seconds, peak_rss_mb=done.peak_rss_mb,
                                                      invoke_cpu=invoke.cpu_seconds, cpu_by_role=done.cpu_by_role,
                                                      **row))
                        if report:
                            report(results)
                finally:
                    server.stop()
        finally:
            postgres.stop()
    return results


CASES_TAP = {"activtrak": "tap-activtrak", "beyondtrust": "tap-beyondtrust", "controlio": "tap-controlio",
             "ekran": "tap-ekran", "sessionreports": "tap-sessionreports"}


def table(results: list[PipelineResult]) -> str:
    head = (f"{'tap':<19} {'stream':<20} {'pipeline':<44} {'records':>8} {'CPU s':>6} {'rec/CPU-s':>9} "
            f"{'plain/':>6} {'invoke/':>7} {'wall s':>6} {'RSS MB tap':>10} {'loader':>6} {'meltano':>7} "
            f"{'CPU s tap':>9} {'loader':>6} {'meltano':>7}")
    lines = [head, "-" * len(head)]
    for r in results:
        rate = r.records / r.cpu_seconds if r.cpu_seconds else 0.0
        vs_plain = r.plain_cpu / r.cpu_seconds if r.cpu_seconds else 0.0
        vs_invoke = f"{r.invoke_cpu / r.cpu_seconds:.2f}" if r.invoke_cpu and r.cpu_seconds else ""
        rss = [f"{r.peak_rss_mb[k]:.0f}" if k in r.peak_rss_mb else "" for k in ("tap", "loader", "meltano")]
        cpu = [f"{r.cpu_by_role[k]:.1f}" if k in r.cpu_by_role else "" for k in ("tap", "loader", "meltano")]
        lines.append(f"{r.tap:<19} {r.stream:<20} {r.pipeline:<44} {r.records:>8,} {r.cpu_seconds:>6.1f} "
                     f"{rate:>9,.0f} {vs_plain:>6.2f} {vs_invoke:>7} {r.wall_seconds:>6.1f} {rss[0]:>10} "
                     f"{rss[1]:>6} {rss[2]:>7} {cpu[0]:>9} {cpu[1]:>6} {cpu[2]:>7}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table(run(0.05, sys.argv[1:])))
