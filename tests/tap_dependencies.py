"""Print the dependencies of the given taps (their pyproject.toml), singer-sdk left out.

`make test-sdk-next` installs the taps without their dependencies (they pin the
released singer-sdk line) and these beside them, with the pre-release of singer-sdk.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import tomllib


def dependencies(tap_dirs: list[str]) -> list[str]:
    found: list[str] = []
    for tap_dir in tap_dirs:
        project = tomllib.loads((Path(tap_dir) / "pyproject.toml").read_text())["project"]
        for requirement in project.get("dependencies", []):
            name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower()
            if name != "singer-sdk" and requirement not in found:
                found.append(requirement)
    return found


if __name__ == "__main__":
    print(" ".join(dependencies(sys.argv[1:])))
