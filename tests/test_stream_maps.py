"""Stream maps, deselected properties and flattening, for every tap.

The taps write RECORD messages on a fast path when nothing would change a
record (every property selected, no stream map, no flattening); these tests
check that each of those settings still reaches the records, on each tap's
largest stream, with the exact number of distinct records the sandbox
serves (tap-ekran writes a session open across a window boundary twice).
"""

from __future__ import annotations

import pytest

from tests.demo import meltano_taps, sandbox_config
from tests.taputil import discover, run_tap

TAPS = {tap: vendor for tap, vendor in meltano_taps().items() if "--" not in tap}


def largest_stream(server) -> tuple[str, int]:
    expected = server.app.info()["expected_counts"]
    stream = max(expected, key=lambda name: (expected[name], name))
    return stream, expected[stream]


def distinct(run, stream: str) -> int:
    keys = run.schema(stream)["key_properties"]
    assert keys, stream
    return len({tuple(record[k] for k in keys) for record in run.records(stream)})


def catalog_entry(catalog: dict, stream: str) -> dict:
    (entry,) = [e for e in catalog["streams"] if e["tap_stream_id"] == stream]
    return entry


def only(catalog: dict, stream: str) -> dict:
    """``catalog`` with ``stream`` alone selected."""
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] == stream
    return catalog


def plain_property(entry: dict) -> str:
    """A property of ``entry`` that is neither a key nor the replication key."""
    root = next(m["metadata"] for m in entry["metadata"] if m["breadcrumb"] == [])
    reserved = {*(root.get("table-key-properties") or []), *(root.get("valid-replication-keys") or [])}
    names = [name for name in entry["schema"]["properties"] if name not in reserved]
    assert names, entry["tap_stream_id"]
    return names[-1]


@pytest.fixture(params=sorted(TAPS))
def tap_and_server(request, sandbox_factory):
    tap = request.param
    return tap, sandbox_factory(TAPS[tap], scale=40, days=3)


def test_a_stream_map_drops_and_adds_properties(tap_and_server):
    tap, server = tap_and_server
    config = sandbox_config(tap, server.url)
    stream, count = largest_stream(server)
    catalog = only(discover(tap, config), stream)
    dropped = plain_property(catalog_entry(catalog, stream))
    maps = {stream: {dropped: None, "mapped_stream": f"'{stream}'"}}
    run = run_tap(tap, {**config, "stream_maps": maps}, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    records = run.records(stream)
    assert distinct(run, stream) == count
    assert all(dropped not in r and r["mapped_stream"] == stream for r in records)
    properties = run.schema(stream)["schema"]["properties"]
    assert dropped not in properties and "mapped_stream" in properties


def test_a_deselected_property_is_left_out(tap_and_server):
    tap, server = tap_and_server
    config = sandbox_config(tap, server.url)
    stream, count = largest_stream(server)
    catalog = only(discover(tap, config), stream)
    entry = catalog_entry(catalog, stream)
    dropped = plain_property(entry)
    for item in entry["metadata"]:
        if item["breadcrumb"] == ["properties", dropped]:
            item["metadata"]["selected"] = False
    run = run_tap(tap, config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    records = run.records(stream)
    assert distinct(run, stream) == count
    kept = set(entry["schema"]["properties"]) - {dropped}
    assert all(dropped not in r for r in records)
    assert any(kept & set(r) for r in records)


def test_an_aliased_stream_carries_the_records(tap_and_server):
    tap, server = tap_and_server
    config = sandbox_config(tap, server.url)
    stream, count = largest_stream(server)
    catalog = only(discover(tap, config), stream)
    run = run_tap(tap, {**config, "stream_maps": {stream: {"__alias__": f"{stream}_copy"}}}, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.counts()) == {f"{stream}_copy"}
    assert distinct(run, f"{stream}_copy") == count
