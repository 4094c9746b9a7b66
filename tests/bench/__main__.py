"""make bench: every tests/bench/bench_<vendor>.py, one table.

Each bench module defines ``run(scale_factor: float) -> list[BenchResult]``.
    python -m tests.bench [VENDOR ...] [--scale-factor 0.1]
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import os

from tests.bench import common


def main() -> None:
    here = os.path.dirname(__file__)
    modules = sorted(m.name for m in pkgutil.iter_modules([here]) if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser()
    parser.add_argument("vendor", nargs="*", help=", ".join(m[6:] for m in modules))
    parser.add_argument("--scale-factor", type=float, default=1.0,
                        help="multiply every case's size (0.1 for a quick look)")
    args = parser.parse_args()
    results = []
    for name in modules:
        if args.vendor and name[6:] not in args.vendor:
            continue
        module = importlib.import_module(f"tests.bench.{name}")
        results.extend(module.run(args.scale_factor))
        print(common.table(results), flush=True)
        print()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("ratio = plain client CPU s per record / tap CPU s per record (user+sys; >= 0.5 is the goal)")


if __name__ == "__main__":
    main()
