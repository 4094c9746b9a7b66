"""make bench: every tests/bench/bench_<vendor>.py, one table.

Each bench module defines ``run(scale_factor: float) -> list[BenchResult]``.
Then the pipeline table (tests/bench/pipeline.py): `meltano run` of one large
stream per tap into target-postgres and target-duckdb.
    python -m tests.bench [VENDOR ...] [--scale-factor 0.1] [--pipeline-only | --taps-only]
                          [--baseline REV] [--variants [WORD ...]] [--repeat N]
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform

from tests.bench import common


def main() -> None:
    here = os.path.dirname(__file__)
    modules = sorted(m.name for m in pkgutil.iter_modules([here]) if m.name.startswith("bench_"))
    parser = argparse.ArgumentParser()
    parser.add_argument("vendor", nargs="*", help=", ".join(m[6:] for m in modules))
    parser.add_argument("--scale-factor", type=float, default=1.0,
                        help="multiply every case's size (0.1 for a quick look)")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--pipeline-only", action="store_true", help="just the pipeline table")
    only.add_argument("--taps-only", action="store_true", help="just the tap table")
    parser.add_argument("--baseline", metavar="REV",
                        help="pipelines also with meltano.yml as it was at commit REV (e.g. 2470e2e)")
    parser.add_argument("--variants", nargs="*", metavar="WORD",
                        help="pipelines also with each loader choice of meltano.yml reverted, one at a time "
                             "(only the variants whose label contains a WORD given, e.g. RECORD or 10,000)")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="pipelines: each row N times in interleaved rounds, the best CPU of them")
    args = parser.parse_args()
    results = []
    for name in modules if not args.pipeline_only else []:
        if args.vendor and name[6:] not in args.vendor:
            continue
        module = importlib.import_module(f"tests.bench.{name}")
        results.extend(module.run(args.scale_factor))
        print(common.table(results), flush=True)
        print()
    if not args.taps_only:
        from tests.bench import pipeline

        def report(rows: list) -> None:
            print(pipeline.table(rows), flush=True)
            print()

        # --variants alone: every variant; with words: those only
        variants = True if args.variants == [] else (args.variants or False)
        rows = pipeline.run(args.scale_factor, args.vendor, baseline=args.baseline, variants=variants,
                            report=report, repeat=args.repeat)
        if not rows:
            report(rows)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    if not args.pipeline_only:
        print("ratio = plain client CPU s per record / tap CPU s per record (user+sys; >= 0.5 is the goal)")
    if not args.taps_only:
        print("pipeline: CPU s of the whole process tree (meltano, tap, loader); plain/ = plain client CPU s / "
              "pipeline CPU s, invoke/ = `meltano invoke` CPU s / pipeline CPU s (same records); "
              "RSS = peak of each process, sampled")


if __name__ == "__main__":
    main()
