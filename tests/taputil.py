"""Running a tap as a user would (its console script, in a subprocess) and
reading what it wrote: records, schemas and states, per stream."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import typing as t
from collections import defaultdict
from pathlib import Path

BIN = Path(sys.executable).parent
DEFAULT_TIMEOUT = 300


def tap_executable(name: str) -> str:
    path = BIN / name
    if not path.exists():
        raise FileNotFoundError(f"{name} is not installed in {BIN}; run `make test`")
    return str(path)


@dataclasses.dataclass
class TapRun:
    returncode: int
    stdout: str
    stderr: str
    messages: list[dict]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def records(self, stream: str | None = None) -> list[dict]:
        return [
            m["record"]
            for m in self.messages
            if m.get("type") == "RECORD" and (stream is None or m["stream"] == stream)
        ]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for m in self.messages:
            if m.get("type") == "RECORD":
                counts[m["stream"]] += 1
        return dict(counts)

    def schema(self, stream: str) -> dict:
        for m in self.messages:
            if m.get("type") == "SCHEMA" and m["stream"] == stream:
                return m
        raise KeyError(f"no SCHEMA message for {stream}")

    def states(self) -> list[dict]:
        return [m["value"] for m in self.messages if m.get("type") == "STATE"]

    @property
    def state(self) -> dict:
        states = self.states()
        if not states:
            raise AssertionError(f"tap wrote no STATE message; stderr:\n{self.stderr[-3000:]}")
        return states[-1]

    def bookmark(self, stream: str) -> dict:
        return self.state["bookmarks"][stream]


def parse_messages(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def _write_json(directory: Path, name: str, payload: object) -> str:
    path = directory / name
    path.write_text(json.dumps(payload))
    return str(path)


def tap_command(
    tap: str,
    config: dict,
    workdir: Path,
    *,
    state: dict | None = None,
    catalog: dict | None = None,
    discover: bool = False,
) -> list[str]:
    cmd = [tap_executable(tap), "--config", _write_json(workdir, "config.json", config)]
    if discover:
        return [*cmd, "--discover"]
    if state is not None:
        cmd += ["--state", _write_json(workdir, "state.json", state)]
    if catalog is not None:
        cmd += ["--catalog", _write_json(workdir, "catalog.json", catalog)]
    return cmd


def run_tap(
    tap: str,
    config: dict,
    *,
    state: dict | None = None,
    catalog: dict | None = None,
    streams: t.Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    env: dict | None = None,
) -> TapRun:
    """Run ``tap`` to completion. ``streams`` selects only those streams."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if streams is not None:
            catalog = select_streams(discover(tap, config), streams)
        cmd = tap_command(tap, config, workdir, state=state, catalog=catalog)
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
        )
    return TapRun(proc.returncode, proc.stdout, proc.stderr, parse_messages(proc.stdout))


def discover(tap: str, config: dict) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = tap_command(tap, config, Path(tmp), discover=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"{tap} --discover failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def select_streams(catalog: dict, streams: t.Iterable[str]) -> dict:
    """A copy of ``catalog`` in which only ``streams`` are selected."""
    wanted = set(streams)
    catalog = json.loads(json.dumps(catalog))
    found = {entry["tap_stream_id"] for entry in catalog["streams"]} & wanted
    for entry in catalog["streams"]:
        chosen = entry["tap_stream_id"] in wanted
        for meta in entry.get("metadata", []):
            if not meta.get("breadcrumb"):
                meta["metadata"]["selected"] = chosen
    missing = wanted - found
    if missing:
        raise KeyError(f"streams not in catalog: {sorted(missing)}")
    return catalog


def run_tap_until(
    tap: str,
    config: dict,
    *,
    records_before_kill: int,
    state: dict | None = None,
    catalog: dict | None = None,
    streams: t.Iterable[str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> TapRun:
    """Start ``tap`` and SIGKILL it once it has written ``records_before_kill``
    RECORD messages: what a crash mid-stream leaves behind."""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if streams is not None:
            catalog = select_streams(discover(tap, config), streams)
        cmd = tap_command(tap, config, workdir, state=state, catalog=catalog)
        err_path = workdir / "stderr"
        with err_path.open("w") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
            lines: list[str] = []
            seen = 0
            deadline = time.monotonic() + timeout
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if '"RECORD"' in line[:40]:
                    seen += 1
                if seen >= records_before_kill or time.monotonic() > deadline:
                    proc.send_signal(signal.SIGKILL)
                    break
            proc.wait(timeout=30)
            proc.stdout.close()
        stdout = "".join(lines)
        stderr = err_path.read_text()
    return TapRun(proc.returncode, stdout, stderr, parse_messages(stdout))


def assert_no_secret(run: TapRun, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in run.stdout, "a secret reached stdout"
        assert secret not in run.stderr, "a secret reached stderr"
