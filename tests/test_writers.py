"""Every tap's message writer: RECORD lines wait in stdout's buffer, every
other message flushes them, in order (a STATE never reaches the target before
the records it covers)."""

from __future__ import annotations

import importlib
import io
import json
import os
import sys

import pytest
from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage

TAP_MODULES = ["tap_activtrak.tap", "tap_beyondtrust.tap", "tap_controlio.tap", "tap_ekran.tap",
               "tap_sessionreports.tap"]


def available(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1 << 20)
    except BlockingIOError:
        return b""


@pytest.mark.parametrize("module", TAP_MODULES)
def test_records_are_buffered_until_the_next_other_message(module, monkeypatch):
    writer = importlib.import_module(module).RecordBufferingWriter()
    read_end, write_end = os.pipe()
    stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(write_end, "wb"), buffer_size=1 << 16))
    monkeypatch.setattr(sys, "stdout", stdout)
    try:
        writer.write_message(SchemaMessage("s", {"properties": {"id": {"type": "integer"}}}, ["id"]))
        schema = available(read_end)
        assert json.loads(schema)["type"] == "SCHEMA"  # flushed at once
        for n in range(3):
            writer.write_message(RecordMessage("s", {"id": n}))
        assert available(read_end) == b""  # still in the buffer
        writer.write_message(StateMessage({"bookmarks": {"s": {"n": 3}}}))
        lines = [json.loads(line) for line in available(read_end).splitlines()]
        assert [m["type"] for m in lines] == ["RECORD"] * 3 + ["STATE"]
        assert [m["record"]["id"] for m in lines[:3]] == [0, 1, 2]
    finally:
        stdout.close()
        os.close(read_end)
