"""What the loader-package tests share: each tap's sandbox output, counted per stream."""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
from pathlib import Path

from tests.demo import meltano_taps, sandbox_config
from tests.taputil import tap_command

#: the plain extractors of meltano.yml (not the inheriting --batch / --eu ones), by their sandbox vendor
TAPS = {tap: vendor for tap, vendor in meltano_taps().items() if "--" not in tap}
#: rows per loader flush: every stream of more than this many records is upserted into rows already loaded
BATCH_ROWS = 37


def tap_output(tap: str, sandbox_factory: t.Callable[..., t.Any], tmp_path: Path) -> tuple[str, dict[str, int]]:
    """The tap's Singer messages from a small sandbox, and its records per stream (0 for a stream
    with a SCHEMA but no records); the largest stream spans more than two flushes."""
    server = sandbox_factory(TAPS[tap], scale=150, days=3)
    proc = subprocess.run(tap_command(tap, sandbox_config(tap, server.url), tmp_path), capture_output=True,
                          text=True, timeout=300, env=os.environ, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    counts: dict[str, int] = {}
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        if message["type"] in ("SCHEMA", "RECORD"):
            counts[message["stream"]] = counts.get(message["stream"], 0) + (message["type"] == "RECORD")
    assert max(counts.values()) > 2 * BATCH_ROWS, counts
    return proc.stdout, counts


def run_loader(command: list[str], config: dict[str, t.Any], messages: str, tmp: Path, name: str) -> list[str]:
    """The loader's stdout lines (its STATE messages) after reading ``messages`` with ``config``."""
    path = tmp / f"{name}.json"
    path.write_text(json.dumps(config))
    proc = subprocess.run([*command, "--config", str(path)], input=messages, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.splitlines()


def assert_same_tables(own: dict[str, tuple[list, list]], fast: dict[str, tuple[list, list]],
                       counts: dict[str, int]) -> None:
    """Both loads hold a table per stream with the same columns and rows: at most the stream's
    records (fewer where a key repeats), none only for a stream without records."""
    tables = {stream.replace("-", "_").lower(): count for stream, count in counts.items()}
    assert set(fast) == set(own) == set(tables)
    for name, (columns, rows) in own.items():
        assert fast[name][0] == columns, name
        assert fast[name][1] == rows, name
        assert 0 < len(rows) <= tables[name] or len(rows) == tables[name] == 0, name
