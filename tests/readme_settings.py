"""Each tap's README settings table, generated from ``tap-x --about --format=markdown``.

    python -m tests.readme_settings            # rewrite the tables that differ
    python -m tests.readme_settings --check    # exit 1 and name the READMEs that differ

The table sits under the README's ``## Settings`` heading, between two marker
comments; the text around it is the README's own. tests/test_readme_settings.py
fails when a README and its tap's ``--about`` differ.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN = "<!-- settings: generated from `{tap} --about --format=markdown` by `python -m tests.readme_settings` -->"
END = "<!-- end of settings -->"


def taps() -> list[str]:
    return sorted(p.name for p in ROOT.glob("tap-*") if (p / "pyproject.toml").exists())


def about_table(tap: str) -> list[str]:
    """The settings table of ``tap --about --format=markdown``."""
    exe = Path(sys.executable).with_name(tap)
    out = subprocess.run([str(exe), "--about", "--format=markdown"], check=True, capture_output=True,
                         text=True, timeout=120).stdout.splitlines()
    start = out.index("## Settings")
    table = []
    for line in out[start + 1:]:
        if line.startswith("|"):
            table.append(line.rstrip())
        elif table:
            break
    if not table:
        raise ValueError(f"{tap} --about --format=markdown has no settings table")
    return table


def _table_span(lines: list[str], tap: str) -> tuple[int, int]:
    """Where the settings table is: between the markers, else the first table under ## Settings."""
    begin = BEGIN.format(tap=tap)
    if begin in lines:
        first = lines.index(begin)
        return first, lines.index(END, first) + 1
    heading = lines.index("## Settings")
    first = next(i for i in range(heading + 1, len(lines)) if lines[i].startswith(("|", "## ")))
    if not lines[first].startswith("|"):
        raise ValueError(f"{tap}/README.md has no table under ## Settings")
    last = first
    while last < len(lines) and lines[last].startswith("|"):
        last += 1
    return first, last


def rendered(tap: str, readme: str) -> str:
    lines = readme.splitlines()
    first, last = _table_span(lines, tap)
    block = [BEGIN.format(tap=tap), *about_table(tap), END]
    return "\n".join([*lines[:first], *block, *lines[last:]]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which READMEs differ")
    parser.add_argument("tap", nargs="*", help="tap-x (default: every tap)")
    args = parser.parse_args(argv)
    differ = []
    for tap in args.tap or taps():
        path = ROOT / tap / "README.md"
        text = path.read_text()
        new = rendered(tap, text)
        if new != text:
            differ.append(tap)
            if not args.check:
                path.write_text(new)
    if differ:
        print(("differ: " if args.check else "rewritten: ") + ", ".join(differ))
    return 1 if differ and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
