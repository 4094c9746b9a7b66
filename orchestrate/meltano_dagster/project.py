"""meltano.yml as the code location reads it: jobs, schedules and plugin types.

The file is read as YAML (with its ``include_paths``), the way Meltano reads
it: a job's tasks are strings or lists of strings (Meltano's TaskSets), a
schedule names a job and a cron expression or one of Meltano's interval
aliases. Reading the file takes milliseconds; asking the CLI (`meltano job
list`) takes seconds in every process Dagster starts for a step.
"""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # no PyYAML stubs in the Dagster venv

# Meltano's own aliases (meltano.core.schedule.CRON_INTERVALS); None: not scheduled.
CRON_INTERVALS: dict[str, str | None] = {
    "@once": None,
    "@manual": None,
    "@none": None,
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@midnight": "0 0 * * *",
}

# Loaders that write one file that only one process may hold open (DuckDB's
# lock): their tasks run one after another, and one run at a time writes them.
SINGLE_WRITER_NAMESPACES = {"target_duckdb"}

# Settings that decide where Meltano keeps its state: they come from the
# environment of each worker (MELTANO_DATABASE_URI, MELTANO_STATE_BACKEND_URI).
STATE_SETTINGS = ("state_backend", "database_uri")


class ProjectError(ValueError):
    """meltano.yml cannot be turned into Dagster definitions."""


@dataclasses.dataclass(frozen=True)
class Plugin:
    name: str
    type: str  # extractors, loaders, utilities, mappers, ...
    namespace: str


@dataclasses.dataclass(frozen=True)
class Task:
    """One top-level task of a Meltano job: the blocks of one `meltano run`."""

    blocks: tuple[str, ...]
    extractor: str | None  # the extractor the task reads, if any
    loader: str | None
    single_writer: bool  # its loader is a single-writer file (DuckDB)

    @property
    def command(self) -> str:
        return " ".join(self.blocks)

    @property
    def pool(self) -> str:
        """The concurrency pool: one task at a time per extractor (account), else per plugin."""
        return f"meltano/{self.extractor or self.blocks[0].split(':')[0]}"


@dataclasses.dataclass(frozen=True)
class Job:
    name: str
    tasks: tuple[Task, ...]


@dataclasses.dataclass(frozen=True)
class Schedule:
    name: str
    job: str
    cron: str | None  # None: defined, not scheduled (@once, @manual)
    interval: str
    env: dict[str, str]


@dataclasses.dataclass(frozen=True)
class MeltanoProject:
    root: Path
    default_environment: str | None
    plugins: dict[str, Plugin]
    jobs: dict[str, Job]
    schedules: tuple[Schedule, ...]


def _documents(root: Path) -> list[dict]:
    path = root / "meltano.yml"
    if not path.exists():
        raise ProjectError(f"no meltano.yml in {root} (set MELTANO_PROJECT_ROOT)")
    main = yaml.safe_load(path.read_text()) or {}
    documents = [main]
    for pattern in main.get("include_paths", []):
        for included in sorted(glob.glob(str(root / pattern), recursive=True)):
            documents.append(yaml.safe_load(Path(included).read_text()) or {})
    return documents


def _task_blocks(job: str, task: object) -> tuple[str, ...]:
    # Meltano's TaskSets.flat_args_per_set: a string is split on spaces, a
    # list of strings is one task made of all their blocks.
    parts = [task] if isinstance(task, str) else task
    if not isinstance(parts, list) or not all(isinstance(p, str) for p in parts):
        raise ProjectError(f"job {job!r}: a task is a string or a list of strings, not {task!r}")
    blocks = tuple(block for part in parts for block in part.split())
    if not blocks:
        raise ProjectError(f"job {job!r} has an empty task")
    return blocks


def _namespace(plugins: dict[str, dict], name: str, seen: tuple[str, ...] = ()) -> str:
    plugin = plugins[name]
    if plugin.get("namespace"):
        return plugin["namespace"]
    parent = plugin.get("inherit_from")
    if parent in plugins and parent not in seen:
        return _namespace(plugins, parent, (*seen, name))
    return name.replace("-", "_")


def load_project(root: str | os.PathLike[str]) -> MeltanoProject:
    root = Path(root).resolve()
    documents = _documents(root)
    main = documents[0]
    for key in STATE_SETTINGS:
        if key in main:
            raise ProjectError(
                f"meltano.yml sets {key!r}: where the state lives comes from each worker's "
                "environment (MELTANO_DATABASE_URI, MELTANO_STATE_BACKEND_URI), never from meltano.yml"
            )

    raw_plugins: dict[str, dict] = {}
    types: dict[str, str] = {}
    for document in documents:
        for plugin_type, entries in (document.get("plugins") or {}).items():
            for entry in entries or []:
                raw_plugins[entry["name"]] = entry
                types[entry["name"]] = plugin_type
    plugins = {
        name: Plugin(name, types[name], _namespace(raw_plugins, name)) for name in raw_plugins
    }

    def task_of(job: str, raw: object) -> Task:
        blocks = _task_blocks(job, raw)
        names = [block.split(":")[0] for block in blocks]
        unknown = [n for n in names if n not in plugins]
        if unknown:
            raise ProjectError(f"job {job!r}: task {' '.join(blocks)!r} names no plugin of meltano.yml: {unknown}")
        extractors = [n for n in names if plugins[n].type == "extractors"]
        loaders = [n for n in names if plugins[n].type == "loaders"]
        return Task(
            blocks=blocks,
            extractor=extractors[0] if extractors else None,
            loader=loaders[0] if loaders else None,
            single_writer=any(plugins[n].namespace in SINGLE_WRITER_NAMESPACES for n in loaders),
        )

    jobs: dict[str, Job] = {}
    for document in documents:
        for entry in document.get("jobs") or []:
            name = entry["name"]
            raw_tasks = entry.get("tasks") or []
            raw_tasks = [raw_tasks] if isinstance(raw_tasks, str) else raw_tasks
            if not raw_tasks:
                raise ProjectError(f"job {name!r} has no tasks")
            jobs[name] = Job(name, tuple(task_of(name, raw) for raw in raw_tasks))

    schedules = []
    for document in documents:
        for entry in document.get("schedules") or []:
            if "job" not in entry:
                # extractor/loader schedules (`meltano elt`) predate jobs: make them a job
                raise ProjectError(f"schedule {entry.get('name')!r} names no job (only job schedules run on Dagster)")
            if entry["job"] not in jobs:
                raise ProjectError(f"schedule {entry['name']!r} names the unknown job {entry['job']!r}")
            interval = str(entry.get("interval", "@manual")).strip()
            cron = CRON_INTERVALS.get(interval, interval)
            schedules.append(Schedule(
                name=entry["name"], job=entry["job"], cron=cron, interval=interval,
                env={str(k): str(v) for k, v in (entry.get("env") or {}).items()},
            ))

    return MeltanoProject(
        root=root,
        default_environment=main.get("default_environment"),
        plugins=plugins,
        jobs=jobs,
        schedules=tuple(schedules),
    )
