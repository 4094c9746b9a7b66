"""The code location: `dagster dev -m meltano_dagster.definitions` (see orchestrate/README.md).

Every Meltano job becomes a Dagster job with one op per task, in the order
Meltano would run them: consecutive extractor tasks run side by side (one op
per extractor, so per account), a task without an extractor (the dbt build)
waits for every task before it and the tasks after it wait for it. Tasks that
load a single-writer file (DuckDB) run one after another.

Every op is in the concurrency pool of its extractor (``meltano/<extractor>``;
the instance's default pool limit of 1 lets one op per pool run at a time,
across all runs): two runs of one account never overlap. A failed op is
retried with exponential backoff (RetryPolicy).

Settings read when the definitions load (environment):
  MELTANO_PROJECT_ROOT            the Meltano project (default: this repository)
  MELTANO_DAGSTER_OP_RETRIES      retries of a failed task (default 3)
  MELTANO_DAGSTER_RETRY_DELAY     seconds before the first retry, doubled each time (default 60)
"""


import os
import re

import dagster as dg

from meltano_dagster.meltano import MeltanoResource, default_project_dir
from meltano_dagster.project import Job, MeltanoProject, Task, load_project

DEFAULT_OP_RETRIES = 3
DEFAULT_RETRY_DELAY = 60.0


def dagster_name(text: str) -> str:
    """A Dagster name (^[A-Za-z0-9_]+$) for a Meltano name or task."""
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _env_number(name: str, default: float, kind: type = float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if value < 0:
        raise ValueError(f"{name} must be 0 or more, not {raw!r}")
    return value


def retry_policy() -> dg.RetryPolicy:
    return dg.RetryPolicy(
        max_retries=int(_env_number("MELTANO_DAGSTER_OP_RETRIES", DEFAULT_OP_RETRIES, int)),
        delay=_env_number("MELTANO_DAGSTER_RETRY_DELAY", DEFAULT_RETRY_DELAY),
        backoff=dg.Backoff.EXPONENTIAL,
        jitter=dg.Jitter.PLUS_MINUS,
    )


def task_op(task: Task, environment: str | None, policy: dg.RetryPolicy) -> dg.OpDefinition:
    tags = {"meltano/task": task.command}
    if task.extractor:
        tags["meltano/extractor"] = task.extractor

    @dg.op(
        name=dagster_name(task.command),
        description=f"`meltano run {task.command}`",
        ins={"after": dg.In(dg.Nothing)},
        out=dg.Out(dg.Nothing),
        pool=task.pool,
        retry_policy=policy,
        tags=tags,
    )
    def run_task(context: dg.OpExecutionContext, meltano: MeltanoResource) -> None:
        meltano.run_task(task.blocks, context, environment)

    return run_task


def build_job(job: Job, ops: dict[str, dg.OpDefinition]) -> dg.JobDefinition:
    tags = {"meltano/job": job.name}
    writers = sorted({t.loader for t in job.tasks if t.single_writer and t.loader})
    if writers:
        # the instance's run queue admits one such run per file at a time
        tags["meltano/single-writer"] = ",".join(writers)

    @dg.job(
        name=dagster_name(job.name),
        description=f"Meltano job `{job.name}`: " + "; ".join(t.command for t in job.tasks),
        tags=tags,
    )
    def meltano_job() -> None:
        done: list = []  # everything the next non-extractor task waits for
        layer: list = []  # the extractor tasks running side by side since then
        last_writer = None  # single-writer tasks of the layer: one after another
        for task in job.tasks:
            op_def = ops[task.command]
            if task.extractor is None:
                node = op_def(after=[*done, *layer]) if done or layer else op_def()
                done, layer, last_writer = [node], [], None
                continue
            upstream = [*done, last_writer] if task.single_writer and last_writer is not None else done
            node = op_def(after=upstream) if upstream else op_def()
            layer.append(node)
            if task.single_writer:
                last_writer = node

    return meltano_job


def build_definitions(project: MeltanoProject) -> dg.Definitions:
    policy = retry_policy()
    ops: dict[str, dg.OpDefinition] = {}
    for job in project.jobs.values():
        for task in job.tasks:
            if task.command not in ops:  # one op definition per task, shared by the jobs
                ops[task.command] = task_op(task, project.default_environment, policy)
    jobs = {name: build_job(job, ops) for name, job in project.jobs.items()}
    schedules = [
        dg.ScheduleDefinition(
            name=dagster_name(schedule.name),
            job=jobs[schedule.job],
            cron_schedule=schedule.cron,
            execution_timezone="UTC",
            description=f"Meltano schedule `{schedule.name}` ({schedule.interval})"
            + (f", env {', '.join(f'{k}={v}' for k, v in schedule.env.items())}" if schedule.env else ""),
            run_config=dg.RunConfig(resources={"meltano": MeltanoResource(env=schedule.env)})
            if schedule.env else None,
            tags={"meltano/schedule": schedule.name},
            # Meltano runs what meltano.yml schedules: so does Dagster
            default_status=dg.DefaultScheduleStatus.RUNNING,
        )
        for schedule in project.schedules
        if schedule.cron is not None
    ]
    return dg.Definitions(
        jobs=list(jobs.values()),
        schedules=schedules,
        resources={"meltano": MeltanoResource(project_dir=str(project.root))},
    )


defs = build_definitions(load_project(default_project_dir()))
