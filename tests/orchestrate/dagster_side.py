"""The Dagster half of tests/orchestrate, run by orchestrate/.venv/bin/python
(the tests themselves run in the project's .venv, which has no Dagster):

    python dagster_side.py describe            the definitions as JSON
    python dagster_side.py execute JOB         a run of JOB (multiprocess executor), its events as JSON
    python dagster_side.py resume JOB          what Dagster does for a run whose worker died:
                                               the run monitor marks it failed and frees its pool
                                               slots, run retries re-execute it from its failure

DAGSTER_HOME, MELTANO_PROJECT_ROOT and the Meltano settings come from the environment.
The JSON is the last line of stdout, after "RESULT ".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORCHESTRATE = Path(__file__).resolve().parents[2] / "orchestrate"
sys.path.insert(0, str(ORCHESTRATE))

import dagster as dg  # noqa: E402
from dagster._core.definitions.reconstruct import ReconstructableRepository  # noqa: E402

MODULE = "meltano_dagster.definitions"
STEP_EVENTS = {"STEP_START", "STEP_SUCCESS", "STEP_FAILURE", "STEP_UP_FOR_RETRY", "STEP_RESTARTED"}


def describe() -> dict:
    from meltano_dagster.definitions import defs

    repo = defs.get_repository_def()
    jobs = {}
    for job in repo.get_all_jobs():
        if job.name.startswith("__"):
            continue
        structure = job.graph.dependency_structure
        ops = {}
        for node in job.graph.nodes:
            policy = node.definition.retry_policy
            ops[node.name] = {
                "task": node.definition.tags.get("meltano/task"),
                "extractor": node.definition.tags.get("meltano/extractor"),
                "pool": node.definition.pool,
                "upstream": sorted(o.node_name for o in structure.all_upstream_outputs_from_node(node.name)),
                "retry": {"max_retries": policy.max_retries, "delay": policy.delay,
                          "backoff": policy.backoff.value if policy.backoff else None},
            }
        jobs[job.name] = {"tags": dict(job.tags), "ops": ops}
    schedules = {}
    for schedule in repo.schedule_defs:
        requests = schedule.evaluate_tick(dg.build_schedule_context()).run_requests or []
        config = requests[0].run_config if requests else {}
        schedules[schedule.name] = {
            "cron": schedule.cron_schedule, "job": schedule.job_name,
            "status": schedule.default_status.value,
            "env": config.get("resources", {}).get("meltano", {}).get("config", {}).get("env", {}),
        }
    return {"jobs": jobs, "schedules": schedules}


def summary(instance: dg.DagsterInstance, run_id: str) -> dict:
    run = instance.get_run_by_id(run_id)
    events = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        if kind in STEP_EVENTS or (kind == "ENGINE_EVENT" and "pool" in (record.user_message or "").lower()):
            events.append({"type": kind, "step": record.step_key, "time": record.timestamp,
                           "message": (record.user_message or "")[:500]})
    return {"run_id": run_id, "status": run.status.value, "job": run.job_name,
            "parent": run.parent_run_id, "events": events}


def recon_job(name: str):
    repo = ReconstructableRepository.for_module(MODULE, "defs", working_directory=str(ORCHESTRATE))
    return repo.get_reconstructable_job(name)


def execute(name: str) -> dict:
    with dg.DagsterInstance.get() as instance:
        result = dg.execute_job(recon_job(name), instance, raise_on_error=False)
        return summary(instance, result.run_id)


def resume(name: str) -> dict:
    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs(filters=dg.RunsFilter(job_name=name), limit=1)
        if not run.is_finished:
            # the run monitor: a run whose worker is gone has failed
            instance.report_run_failed(run, "the run worker died")
        instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        options = dg.ReexecutionOptions.from_failure(run.run_id, instance)
        result = dg.execute_job(recon_job(name), instance, reexecution_options=options, raise_on_error=False)
        return summary(instance, result.run_id)


def main(argv: list[str]) -> int:
    command, *args = argv
    result = {"describe": describe, "execute": execute, "resume": resume}[command](*args)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
