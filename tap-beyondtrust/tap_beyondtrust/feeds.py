"""Streams fed by another stream's download: the events of a SupportSession
answer, the lines of an event archive, the rows of a state archive.

One answer holds the records of several streams, so the stream that reads it
hands each record to the stream it belongs to as it is parsed (never holding
an answer in memory). singer-sdk has no public hook for a stream to emit
records it does not yield itself (its writers are private), so a fed stream
writes its messages with public pieces only: its ``stream_maps``, its
selection ``mask`` and the tap's ``write_message``.
"""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk import Stream
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import RemoveRecordTransform
from singer_sdk.singerlib import ActivateVersionMessage, RecordMessage, SchemaMessage
from typing_extensions import override

from tap_beyondtrust._sdk import tap_of

UTC = dt.timezone.utc


class FedStream(Stream):
    """A stream whose records another stream hands over (it never requests anything itself).

    ``open_feed`` once per sync (the SCHEMA message), then ``feed`` per record;
    with a ``version``, its RECORD messages carry it and ``activate`` sends the
    ACTIVATE_VERSION once the feeding stream has read its whole snapshot.
    """

    # records are built with their declared types: nothing to conform
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    @override
    def get_records(self, context: t.Any) -> t.Iterable[dict]:
        return iter(())

    def open_feed(self, version: int | None = None) -> None:
        """Start a feed: the SCHEMA message, and the version its records carry."""
        self.feed_version = version
        self.feed_maps = [m for m in self.stream_maps if not isinstance(m, RemoveRecordTransform)]
        self.feed_deselected = not all(self.mask.values())
        self.feed_write = tap_of(self).write_message
        bookmarks = [self.replication_key] if self.replication_key else None
        for stream_map in self.feed_maps:
            self.feed_write(SchemaMessage(stream_map.stream_alias, stream_map.transformed_schema,
                                          stream_map.transformed_key_properties, bookmarks))

    def feed(self, record: dict) -> None:
        """One record: RECORD messages through the stream maps, deselected properties left out."""
        if self.feed_deselected:
            _drop_deselected(record, self.mask, ())
        for stream_map in self.feed_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                self.feed_write(RecordMessage(stream=stream_map.stream_alias, record=mapped,
                                              version=self.feed_version, time_extracted=dt.datetime.now(UTC)))

    def activate(self, version: int) -> None:
        """The feed's snapshot is whole: rows of earlier versions are gone."""
        for stream_map in self.feed_maps:
            self.feed_write(ActivateVersionMessage(stream=stream_map.stream_alias, version=version))


def _drop_deselected(record: dict, mask: t.Mapping[tuple[str, ...], bool], crumb: tuple[str, ...]) -> None:
    """The properties the catalog deselects, at any depth (as singer-sdk does for yielded records)."""
    for name, value in list(record.items()):
        path = (*crumb, "properties", name)
        if not mask.get(path, True):
            del record[name]
        elif isinstance(value, dict):
            _drop_deselected(value, mask, path)
