"""Run a command and write its CPU seconds and peak RSS (from wait4) as JSON.

    python -m tests.bench.rusage OUT.json CMD [ARG ...]

Why a launcher: Linux counts a process's peak RSS from the moment it was
forked, so a command forked straight from a large process (a pytest worker,
a benchmark holding a sandbox) reports its parent's size as its own. Forked
from this small, fresh interpreter, the figure is the command's.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> int:
    out, *cmd = sys.argv[1:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    with open(out, "w") as handle:
        json.dump({"cpu_seconds": usage.ru_utime + usage.ru_stime, "maxrss_kb": usage.ru_maxrss,
                   "returncode": code}, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
