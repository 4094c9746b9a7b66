"""meltano.yml declares each tap's settings as the tap itself does (``tap-x --about``).

A setting missing from meltano.yml cannot be set with ``meltano config``; a
wrong ``kind`` makes Meltano pass the wrong JSON type (an ``integer`` kind
turns ``2.5`` into an error for a setting the tap takes as a number); a
different default means ``meltano run`` and the tap alone read different data.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.demo import project_config

ROOT = Path(__file__).resolve().parent.parent
#: settings singer-sdk adds to every tap; Meltano offers them through the stream-maps and
#: schema-flattening capabilities, so meltano.yml does not repeat them
SDK_SETTINGS = {"faker_config", "flattening_enabled", "flattening_max_depth", "flattening_max_key_length",
                "flattening_separator", "stream_map_config", "stream_maps"}
#: where the project chooses another default than the tap's, and why
PROJECT_DEFAULTS = {"emit_activate_version_messages": True}  # deletions reach the warehouse (README)


def extractors() -> dict[str, dict]:
    return {plugin["name"]: plugin for plugin in project_config()["plugins"]["extractors"]
            if "inherit_from" not in plugin}


@functools.cache
def about(tap: str) -> dict:
    exe = Path(sys.executable).with_name(tap)
    out = subprocess.run([str(exe), "--about", "--format=json"], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    return json.loads(out)["settings"]["properties"]


def meltano_kind(prop: dict) -> str:
    """The Meltano ``kind`` for a JSON-schema property of a tap's config."""
    types = prop.get("type", "string")
    types = [x for x in ([types] if isinstance(types, str) else types) if x != "null"]
    kind = types[0] if types else "string"
    if kind == "number":
        return "decimal"
    if kind in ("integer", "boolean", "object", "array"):
        return kind
    if prop.get("secret"):
        return "password"
    if prop.get("format") == "date-time":
        return "date_iso8601"
    if prop.get("enum"):
        return "options"
    return "string"


def declared(setting: dict) -> str:
    return setting.get("kind") or "string"


@pytest.mark.parametrize("tap", sorted(extractors()))
def test_meltano_yml_declares_every_setting_of_the_tap_with_its_kind_and_default(tap):
    props = about(tap)
    settings = {s["name"]: s for s in extractors()[tap].get("settings", [])}
    assert sorted(set(props) - SDK_SETTINGS - set(settings)) == [], f"{tap}: settings missing from meltano.yml"
    assert sorted(set(settings) - set(props)) == [], f"{tap}: meltano.yml settings the tap does not know"
    wrong_kind = {name: (declared(s), meltano_kind(props[name])) for name, s in settings.items()
                  if declared(s) != meltano_kind(props[name])}
    assert wrong_kind == {}, f"{tap}: meltano.yml kind vs the tap's type (declared, expected)"
    wrong_default = {name: (s.get("value"), PROJECT_DEFAULTS.get(name, props[name].get("default")))
                     for name, s in settings.items()
                     if s.get("value") != PROJECT_DEFAULTS.get(name, props[name].get("default"))}
    assert wrong_default == {}, f"{tap}: meltano.yml value vs the tap's default (declared, expected)"


def test_a_wrong_kind_is_caught():
    assert meltano_kind({"type": ["number", "null"]}) == "decimal" != declared({"kind": "integer"})
    assert meltano_kind({"type": ["string"], "secret": True}) == "password"
    assert meltano_kind({"type": ["string", "null"], "format": "date-time"}) == "date_iso8601"
    assert meltano_kind({"type": "string", "enum": ["day", "week"]}) == "options"
    assert meltano_kind({"type": ["string"]}) == declared({}) == "string"
