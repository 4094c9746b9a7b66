"""Run vendor sandboxes until stopped.

    python -m tests.sandbox [VENDOR ...] [--scale N] [--seed N] [--days N]
                            [--set vendor.option=value ...] [--state-dir DIR]

With no vendor, every vendor runs. Each listens on a free port of 127.0.0.1;
the addresses are written to DIR/sandbox.json ({vendor: {"url": ..., ...}})
and DIR/sandbox.env (``SANDBOX_<VENDOR>_URL=...`` lines, for a shell or make).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from tests.sandbox import make_app, vendors
from tests.sandbox.core import Sandbox


def _parse_value(raw: str) -> object:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vendor", nargs="*", help=f"any of {', '.join(vendors())}")
    parser.add_argument("--scale", type=int, default=None, help="main records per vendor")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="VENDOR.OPTION=VALUE")
    parser.add_argument("--state-dir", default=".sandbox")
    args = parser.parse_args(argv)

    chosen = args.vendor or vendors()
    unknown = sorted(set(chosen) - set(vendors()))
    if unknown:
        parser.error(f"unknown vendor(s): {', '.join(unknown)}")

    options: dict[str, dict[str, object]] = {v: {"seed": args.seed} for v in chosen}
    for vendor in chosen:
        if args.scale is not None:
            options[vendor]["scale"] = args.scale
        if args.days is not None:
            options[vendor]["days"] = args.days
    for item in args.set:
        key, _, raw = item.partition("=")
        vendor, _, option = key.partition(".")
        if vendor not in options or not option:
            parser.error(f"--set {item!r}: expected VENDOR.OPTION=VALUE for a chosen vendor")
        options[vendor][option] = _parse_value(raw)

    servers = {v: Sandbox(make_app(v, **options[v])).start() for v in chosen}
    state_dir = Path(args.state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "sandbox.json").write_text(json.dumps(
        {v: {"url": s.url, **s.app.info().get("credentials", {})} for v, s in servers.items()},
        indent=2,
    ))
    (state_dir / "sandbox.env").write_text(
        "".join(f"SANDBOX_{v.upper()}_URL={s.url}\n" for v, s in servers.items())
    )
    (state_dir / "sandbox.pid").write_text(str(os.getpid()))
    for vendor, server in servers.items():
        print(f"{vendor}: {server.url}", flush=True)

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    for server in servers.values():
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
