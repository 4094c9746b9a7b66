"""Measuring a tap against a plain client reading the same sandbox.

Both run as child processes of the benchmark, which serves the sandbox in
its own threads; each child's CPU time (user + system) and peak RSS come
from ``os.wait4``, so neither the sandbox nor the other child is counted.
The figure that matters is the ratio of CPU seconds per record: plain / tap
(1.0: as fast as the plain client; 0.5: twice the CPU per record).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Measure:
    cpu_seconds: float
    peak_rss_mb: float
    wall_seconds: float
    returncode: int


@dataclasses.dataclass
class BenchResult:
    tap_name: str
    case: str
    records: int
    tap: Measure
    plain: Measure

    @property
    def ratio(self) -> float:
        """Plain client CPU per record / tap CPU per record."""
        return self.plain.cpu_seconds / self.tap.cpu_seconds if self.tap.cpu_seconds else 0.0


def measure(cmd: t.Sequence[str], env: dict | None = None, stdout: t.Any = subprocess.DEVNULL,
            repeat: int = 1) -> Measure:
    """Run ``cmd``; its CPU seconds (user+sys) and peak RSS, via wait4 in a
    small launcher process (see rusage.py: a child of this process would
    report this process's size as its own peak).

    With ``repeat``, the run with the least CPU time of that many (as timeit
    takes the best of its repeats: the others only add what the shared
    machine took meanwhile), with the highest peak RSS of them. Used for the
    short cases, where a busy second of the machine moves the ratio most;
    both sides of a case get the same number of runs."""
    runs = [_measure_once(cmd, env, stdout) for _ in range(max(repeat, 1))]
    best = min(runs, key=lambda run: run.cpu_seconds)
    return dataclasses.replace(best, peak_rss_mb=max(run.peak_rss_mb for run in runs))


def _measure_once(cmd: t.Sequence[str], env: dict | None, stdout: t.Any) -> Measure:
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rusage.json"
        proc = subprocess.Popen([sys.executable, "-m", "tests.bench.rusage", str(report), *cmd],
                                stdout=stdout, stderr=subprocess.PIPE, env={**os.environ, **(env or {})},
                                cwd=ROOT)
        stderr_chunks = []
        assert proc.stderr is not None
        for chunk in iter(lambda: proc.stderr.read(65536), b""):
            stderr_chunks.append(chunk[-4096:])
        proc.wait()
        usage = json.loads(report.read_text()) if report.exists() else {"returncode": proc.returncode}
    wall = time.monotonic() - start
    if usage["returncode"] != 0:
        tail = b"".join(stderr_chunks)[-3000:].decode(errors="replace")
        raise RuntimeError(f"{cmd[0]} exited {usage['returncode']}:\n{tail}")
    # ru_maxrss is in kilobytes on Linux
    return Measure(usage["cpu_seconds"], usage["maxrss_kb"] / 1024, wall, usage["returncode"])


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def table(results: list[BenchResult]) -> str:
    head = (f"{'tap':<20} {'case':<30} {'records':>10} {'tap rec/cpu-s':>14} "
            f"{'plain rec/cpu-s':>16} {'ratio':>6} {'tap RSS MB':>10} {'plain RSS MB':>12}")
    lines = [head, "-" * len(head)]
    for r in results:
        tap_rate = r.records / r.tap.cpu_seconds if r.tap.cpu_seconds else 0
        plain_rate = r.records / r.plain.cpu_seconds if r.plain.cpu_seconds else 0
        lines.append(
            f"{r.tap_name:<20} {r.case:<30} {r.records:>10,} {tap_rate:>14,.0f} "
            f"{plain_rate:>16,.0f} {r.ratio:>6.2f} {r.tap.peak_rss_mb:>10.1f} {r.plain.peak_rss_mb:>12.1f}"
        )
    return "\n".join(lines)
