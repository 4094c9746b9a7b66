"""A throwaway PostgreSQL server for the end-to-end tests.

A new cluster in a temporary folder, listening on 127.0.0.1 at a free port,
trust authentication for the local test user, stopped and deleted afterwards.
Uses the system's PostgreSQL (Debian's `postgresql` package: .ci/run installs
it). As root, the server runs as the `postgres` system user, since PostgreSQL
refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    user = "postgres"
    database = "warehouse"

    def __init__(self, durable_commits: bool = False) -> None:
        # synchronous_commit=off (the fast default here) lets a crash (``halt``) lose the last
        # commits a client was told of: a test that stops the server mid-load needs them kept
        self.durable_commits = durable_commits
        self.bin = bin_dir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.root = Path(tempfile.mkdtemp(prefix="pg-e2e-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.running = False

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=120)

    def start(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync", "-E", "UTF8")
        self.resume()
        self.sql(f"create database {self.database}", database="postgres")
        return self

    def resume(self) -> None:
        """Start the server (again, after ``halt``) and wait until it accepts connections."""
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off -c max_connections=50"
            f" -c synchronous_commit={'on' if self.durable_commits else 'off'}"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")
        self.running = True
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run(
                [str(self.bin / "pg_isready"), "-h", self.host, "-p", str(self.port)],
                capture_output=True, check=False,
            )
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not become ready")
            time.sleep(0.2)

    def halt(self) -> None:
        """Stop the server at once (as a crash would), keeping its data for ``resume``."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        self.running = False

    def stop(self) -> None:
        try:
            if self.running:
                self.halt()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def sql(self, query: str, database: str | None = None) -> list[tuple[str, ...]]:
        """Rows of ``query`` (psql, unaligned, tab-separated)."""
        proc = subprocess.run(
            [str(self.bin / "psql"), "-h", self.host, "-p", str(self.port), "-U", self.user,
             "-d", database or self.database, "-v", "ON_ERROR_STOP=1", "-At", "-F", "\t", "-c", query],
            capture_output=True, text=True, check=False, timeout=120,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr.strip()}")
        return [tuple(line.split("\t")) for line in proc.stdout.splitlines() if line]

    def meltano_env(self) -> dict[str, str]:
        return {
            "TARGET_POSTGRES_HOST": self.host,
            "TARGET_POSTGRES_PORT": str(self.port),
            "TARGET_POSTGRES_USER": self.user,
            "TARGET_POSTGRES_PASSWORD": "",
            "TARGET_POSTGRES_DATABASE": self.database,
        }
