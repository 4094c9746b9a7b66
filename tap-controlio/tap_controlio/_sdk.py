"""The private corners of singer-sdk this tap relies on, in one place.

Checked against singer-sdk 0.54.9 and 0.55.0b7. Everything else in the tap
uses singer-sdk's public hooks only. Each entry says why no public hook does
the job. Every tap of this repository carries an identical copy of this
module (each tap stands alone); tests/test_sdk_private.py fails when the
copies differ.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib import RecordMessage

if t.TYPE_CHECKING:
    from singer_sdk import Stream, Tap

__all__ = ["CheckedConfig", "FastRecordMessages", "RecordBookmarks", "batch_records", "increment_state", "tap_of",
           "write_state"]


class CheckedConfig:
    """Tap mixin: the rules across settings, reported like schema errors.

    singer-sdk validates a config against the JSON schema in the private
    ``Tap._validate_config`` and has no public hook for the rules a schema
    cannot state (one setting against another). This runs the tap's
    ``check_config`` right after the schema check, before any request, and
    masks the values of the settings named in ``SECRET_SETTINGS`` in every
    message (a schema error can quote a value).
    """

    #: settings whose values never appear in an error
    SECRET_SETTINGS: t.ClassVar[tuple[str, ...]] = ()

    def check_config(self, config: t.Mapping[str, t.Any]) -> list[str]:
        """The rules across settings, as readable errors naming the settings."""
        return []

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        config: t.Mapping[str, t.Any] = self._config  # type: ignore[attr-defined]
        try:
            errors = list(super()._validate_config(raise_errors=raise_errors))  # type: ignore[misc]
            schema = None
        except ConfigValidationError as exc:
            errors, schema = list(exc.errors), exc.schema
        if schema is None:  # the types are right: the rules across settings
            errors += self.check_config(config)
        for name in self.SECRET_SETTINGS:
            secret = str(config.get(name) or "")
            if len(secret) >= 3:
                errors = [error.replace(secret, f"<{name}>") for error in errors]
        if errors and (schema is not None or raise_errors):
            raise ConfigValidationError("Config validation failed", errors=errors, schema=schema) from None
        return errors


class FastRecordMessages:
    """Stream mixin: RECORD messages without singer-sdk's per-record walk for
    deselected properties when nothing is deselected and types are not
    conformed again (``Stream._generate_record_messages`` is private). The
    walk recurses into every nested object of every record for nothing: it
    cost about 18% of the CPU of the BeyondTrust archive benchmark and 10-15%
    of the others (tests/bench). When the only stream map is singer-sdk's
    identity map (no stream maps, no alias, no flattening), the record goes
    out as it is: the map pass alone cost 12-15% of the sessionreports
    report_rows benchmark (4.52-4.80 CPU-s for 200,000 rows, 3.89-4.31 without).
    Other stream maps still apply; with any property deselected, or type
    conformance on, the SDK's own path runs.
    """

    def _generate_record_messages(self, record: dict) -> t.Generator[RecordMessage, None, None]:
        path = self.__dict__.get("_fast_records")
        if path is None:
            maps = self.stream_maps  # type: ignore[attr-defined]
            if self.TYPE_CONFORMANCE_LEVEL != TypeConformanceLevel.NONE or not all(  # type: ignore[attr-defined]
                self.mask.values()  # type: ignore[attr-defined]
            ):
                path = "sdk"
            elif (len(maps) == 1 and type(maps[0]) is SameRecordTransform
                  and maps[0].stream_alias == self.name  # type: ignore[attr-defined]
                  and not maps[0].flattening_enabled):
                path = "identity"
            else:
                path = "maps"
            self._fast_records = path
        if path == "sdk":
            yield from super()._generate_record_messages(record)  # type: ignore[misc]
            return
        version = self._stream_version  # type: ignore[attr-defined]
        now = dt.datetime.now(dt.timezone.utc)
        if path == "identity":
            yield RecordMessage(stream=self.name, record=record, version=version,  # type: ignore[attr-defined]
                                time_extracted=now)
            return
        for stream_map in self.stream_maps:  # type: ignore[attr-defined]
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield RecordMessage(stream=stream_map.stream_alias, record=mapped, version=version,
                                    time_extracted=now)


class RecordBookmarks:
    """Stream mixin: the stream's own rule for what a record does to the bookmark.

    singer-sdk moves the bookmark for every record in the private
    ``Stream._increment_stream_state`` and has no public hook for a stream whose
    bookmark is not (only) the latest record's value. ``record_moves_bookmark``
    runs first for every record; when it returns False, singer-sdk's own step is
    skipped. What skipping saved (singer-sdk 0.54.9, tests/bench): tap-controlio,
    whose bookmark is the window saved before each request, 2.6 us a record,
    about 15% of its CPU; tap-sessionreports, which sets the bookmark of a
    sorted list itself, 2.8 us a record, about 4%.
    """

    def record_moves_bookmark(self, record: dict, context: t.Any) -> bool:
        """Whether singer-sdk's per-record bookmark step runs for ``record``."""
        return True

    def _increment_stream_state(self, latest_record: dict, *, context: t.Any = None) -> None:
        if self.record_moves_bookmark(latest_record, context):
            super()._increment_stream_state(latest_record, context=context)  # type: ignore[misc]


def increment_state(stream: Stream, record: t.Mapping[str, t.Any], context: t.Any = None) -> None:
    """Advance the stream's bookmark to ``record`` (``Stream._increment_stream_state``):
    for bookmarks that move without a RECORD (a window read to its end, an
    archive read whole), which singer-sdk only does from records."""
    stream._increment_stream_state(dict(record), context=context)


def write_state(stream: Stream) -> None:
    """Emit a STATE message now (``Stream._write_state_message``): after a unit
    of work whose records are all out (a window, an archive), so that a run
    killed later resumes after it; singer-sdk only does so every
    ``STATE_MSG_FREQUENCY`` records and at the end of the stream."""
    stream._write_state_message()


def batch_records(stream: Stream, context: t.Any = None) -> t.Iterator[dict]:
    """The records a BATCH sync of ``stream`` writes to its files
    (``Stream._sync_records(context, write_messages=False)``, what singer-sdk's
    ``Stream.get_batches`` hands its batcher): each one post-processed, with its
    bookmark moved and its children synced, and no RECORD or STATE message
    written. singer-sdk has no public iterator of them (``get_records`` yields
    the rows before all that); ``streamrules.StreamRules.get_batches`` writes
    them to its own files (the gzip level singer-sdk's batcher does not let
    one choose)."""
    return stream._sync_records(context, write_messages=False)


def tap_of(stream: Stream) -> Tap:
    """The tap a stream belongs to (``Stream._tap``; singer-sdk has no public
    accessor): for a resource shared by the tap's streams."""
    return stream._tap
