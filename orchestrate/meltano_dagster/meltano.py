"""`meltano run` of one task, as a Dagster resource.

Meltano runs in its own environment (the project's .venv): the Dagster
environment only starts it. Its output goes to the step's captured stdout
(Dagster's compute logs), its last lines into the failure when it fails.
"""

from __future__ import annotations

import collections
import ctypes
import os
import signal
import subprocess
import sys
import threading
import typing as t
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
from pydantic import Field

ROOT = Path(__file__).resolve().parents[2]
TAIL_LINES = 40
_PR_SET_PDEATHSIG = 1


def default_project_dir() -> str:
    return os.environ.get("MELTANO_PROJECT_ROOT") or str(ROOT)


def default_meltano_bin() -> str:
    if os.environ.get("MELTANO_BIN"):
        return os.environ["MELTANO_BIN"]
    local = Path(default_project_dir()) / ".venv" / "bin" / "meltano"
    return str(local) if local.exists() else "meltano"


def _die_with_parent() -> None:
    """In the child: SIGKILL when the step process that started it dies, so that
    no orphaned `meltano run` keeps loading beside the retry of its step."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux
        pass


def sanitized_uri(uri: str | None) -> str:
    """A database URI without its credentials, for logs."""
    if not uri:
        return "the project's .meltano/meltano.db (local to this worker)"
    if "://" not in uri:
        return uri
    parts = urlsplit(uri)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class MeltanoResource(dg.ConfigurableResource):
    """Where the Meltano project is and how its runs start."""

    project_dir: str = Field(
        default="", description="The Meltano project (default: MELTANO_PROJECT_ROOT, else this repository)."
    )
    meltano_bin: str = Field(
        default="", description="The meltano executable (default: MELTANO_BIN, else the project's .venv/bin/meltano)."
    )
    environment: str = Field(
        default="", description="The Meltano environment (default: MELTANO_ENVIRONMENT, else default_environment)."
    )
    env: dict[str, str] = Field(default={}, description="More environment for meltano, e.g. a schedule's env.")
    terminate_grace_seconds: float = Field(
        default=30.0, description="Seconds a terminated run's meltano gets before SIGKILL."
    )

    def resolved_project_dir(self) -> str:
        return self.project_dir or default_project_dir()

    def resolved_meltano_bin(self) -> str:
        return self.meltano_bin or default_meltano_bin()

    def run_task(self, blocks: t.Sequence[str], context: dg.OpExecutionContext,
                 environment: str | None) -> None:
        env = {**os.environ, **self.env}
        meltano_environment = self.environment or env.get("MELTANO_ENVIRONMENT") or environment
        if meltano_environment:
            env["MELTANO_ENVIRONMENT"] = meltano_environment
        # every process of this step carries its run and step (ps e, /proc/<pid>/environ)
        env["DAGSTER_RUN_ID"] = context.run_id
        env["DAGSTER_STEP_KEY"] = str(context.op_handle)
        # --force: the op's concurrency pool is what keeps two runs of an extractor
        # apart; a worker that died leaves its meltano run marked running, and
        # the retry must not wait for Meltano to call it stale.
        cmd = [self.resolved_meltano_bin(), "run", "--force", *blocks]
        context.log.info(
            f"meltano run {' '.join(blocks)} (environment {meltano_environment or 'none'}, "
            f"attempt {context.retry_number + 1}); state in "
            f"{sanitized_uri(env.get('MELTANO_DATABASE_URI'))}"
            + (f", backend {sanitized_uri(env['MELTANO_STATE_BACKEND_URI'])}"
               if env.get("MELTANO_STATE_BACKEND_URI", "systemdb") != "systemdb" else "")
        )
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        proc = subprocess.Popen(
            cmd, cwd=self.resolved_project_dir(), env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        reader = threading.Thread(target=_copy_output, args=(proc.stdout, tail), daemon=True)
        reader.start()
        try:
            returncode = proc.wait()
        finally:
            if proc.poll() is None:  # interrupted: the run was terminated
                self._stop(proc, context)
            reader.join(timeout=10)
        if returncode != 0:
            raise dg.Failure(
                description=f"meltano run {' '.join(blocks)} exited with {returncode}",
                metadata={"output (last lines)": dg.MetadataValue.text("".join(tail))},
            )

    def _stop(self, proc: subprocess.Popen, context: dg.OpExecutionContext) -> None:
        context.log.warning(f"stopping meltano (pid {proc.pid}) and its plugins")
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=self.terminate_grace_seconds)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


def _copy_output(stream: t.IO[bytes], tail: collections.deque[str]) -> None:
    out = sys.stdout
    for raw in stream:
        line = raw.decode("utf-8", "replace")
        tail.append(line)
        out.write(line)
        out.flush()
