"""singer-sdk's private names stay in each tap's ``_sdk.py``, and the copies of it are identical.

A private name is one singer-sdk defines with a leading underscore (a method,
an attribute it sets, a module such as ``singer_sdk.helpers._util``). Each tap
uses them only through its ``_sdk.py``, whose docstring names the singer-sdk
versions it was checked against; every tap carries the same copy.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest
import singer_sdk

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(p for p in ROOT.glob("tap-*/tap_*") if (p / "__init__.py").exists())


@cache
def sdk_private_names() -> frozenset[str]:
    """Every ``_name`` singer-sdk defines: methods, functions, attributes it assigns."""
    names: set[str] = set()
    pattern = re.compile(r"def (_[a-z]\w*)|self\.(_[a-z]\w*)\s*[:=]")
    for path in Path(singer_sdk.__file__).parent.rglob("*.py"):
        for match in pattern.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return frozenset(names)


def private_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Where a module uses a private singer-sdk name: attribute, import or ``super(Class, self)``."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr in sdk_private_names():
            found.append(f"{where} .{node.attr}")
        elif isinstance(node, ast.FunctionDef) and node.name in sdk_private_names():
            found.append(f"{where} def {node.name}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("singer_sdk"):
            modules = [node.module or "", *(f"{node.module}.{a.name}" for a in node.names)]
            if any(part.startswith("_") for m in modules[:1] for part in m.split(".")) or any(
                a.name.startswith("_") for a in node.names
            ):
                found.append(f"{where} from {node.module} import ...")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
              and node.args):
            found.append(f"{where} super(...) with arguments")
    return found


def test_every_tap_has_the_same_sdk_module():
    copies = {
        p.relative_to(ROOT).as_posix(): (p / "_sdk.py").read_bytes() for p in PACKAGES if (p / "_sdk.py").exists()
    }
    assert len(copies) == len(PACKAGES) == 5, f"_sdk.py missing in some taps: {sorted(copies)}"
    assert len(set(copies.values())) == 1, f"the _sdk.py copies differ: {sorted(copies)}"


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.parent.name)
def test_private_singer_sdk_names_only_in_the_sdk_module(package):
    uses = [use for path in sorted(package.glob("*.py")) if path.name != "_sdk.py" for use in private_uses(path)]
    assert uses == []


def test_the_check_finds_a_private_use(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from singer_sdk.helpers._util import utc_now\n"
                      "class S:\n    def _increment_stream_state(self):\n"
                      "        super(S, self)._write_state_message()\n"
                      "    def own(self):\n        return self._my_own_attribute\n")
    assert {use.split(" ", 1)[1] for use in private_uses(module, root=tmp_path)} == {
        "from singer_sdk.helpers._util import ...", "def _increment_stream_state", "super(...) with arguments",
        "._write_state_message"}
