"""Event archives: gzip files of JSON lines, streamed, one stream per table.

``event_archives`` lists each date's archives (ArchiveListing) from its
bookmark on, downloads every event archive not read yet (``Archive&type=event``)
and decompresses it as it arrives. Each line becomes a record of the child
stream for its table (``archive_<table>``) or kind (``archive_session_events``,
``archive_truncate_events``; anything unknown goes to ``archive_other_events``),
written directly, so a 4 GB archive never sits in memory. Once a whole archive
has been read, ``event_archives`` emits one record for it and its bookmark
(``archive_key`` = ``<date>/<index, 5 digits>``) moves past it: each archive is
read once; an interrupted sync re-reads at most the archive it was in.

The appliance keeps only the last seven active days of archives: a sync that
finds the archives after its bookmark gone says so in a warning.
"""

from __future__ import annotations

import datetime as dt
import functools
import gzip
import json
import time
import typing as t

from singer_sdk import Stream
from singer_sdk import typing as th

from tap_beyondtrust import xmlrows as xr
from tap_beyondtrust.client import (
    BODY_ERRORS,
    BeyondTrustAPIError,
    BeyondTrustStream,
    FastRecordMessages,
    _xml_error_text,
    default_start,
    iter_elements,
    unix_iso,
)

try:  # msgspec comes with singer-sdk[msgspec]: a faster JSON decoder
    from msgspec.json import decode as _json_decode
    from msgspec import DecodeError as _JsonError
except ImportError:  # pragma: no cover
    _json_decode = json.loads  # type: ignore[assignment]
    _JsonError = ValueError  # type: ignore[assignment,misc]

MODEL_EVENTS = ("model_insert", "model_update", "model_delete")
I, B, T, S = "int", "bool", "ts", "str"
#: the document's tables and field types (model_insert / model_update)
TABLES: dict[str, dict[str, str]] = {
    "customer_client": {"client_type": S, "connected": B, "created_timestamp": T, "elevated": B,
                        "hostname": S, "operating_system": S, "private_ip": S, "public_ip": S,
                        "support_session_id": I},
    "queue": {"code_name": S, "created_timestamp": T, "name": S, "support_team_id": S, "type": S},
    "representative": {"connected": B, "console_in_focus": B, "created_timestamp": T, "hostname": S,
                       "operating_system": S, "private_display_name": S, "private_ip": S,
                       "public_display_name": S, "public_ip": S, "queue_id": I, "routing_available": B,
                       "routing_busy": B, "routing_enabled": B, "routing_idle": B,
                       "selected_support_session_id": I, "skill_code_names": S, "type": S,
                       "user_id": I, "username": S},
    "representative_queue": {"created_timestamp": T, "queue_id": I, "representative_id": I, "role": S},
    "representative_support_session": {"created_timestamp": T, "representative_id": I,
                                       "selected_support_session_service_tool": S,
                                       "support_session_id": I},
    "representative_support_session_tool": {"created_timestamp": T, "representative_id": I,
                                            "support_session_id": I, "tool": S},
    "support_session": {"created_timestamp": T, "customer_company": S, "customer_company_code": S,
                        "customer_description": S, "customer_name": S, "estimated_pickup_timestamp": T,
                        "issue_code_name": S, "issue_description": S, "lsid": S,
                        "primary_team_queue_id": I, "priority": I, "public_site_id": I,
                        "public_site_name": S, "queue_entry_timestamp": T, "queue_id": I,
                        "start_method": S},
    "support_session_attribute": {"code_name": S, "created_timestamp": T, "support_session_id": I,
                                  "value": S},
    "support_session_skill": {"code_name": S, "created_timestamp": T, "support_session_id": I},
}
TH_TYPES = {I: th.IntegerType, B: th.BooleanType, T: th.DateTimeType, S: th.StringType}

ARCHIVE_POSITION = (
    th.Property("archive_date", th.StringType, required=True),
    th.Property("archive_index", th.IntegerType, required=True),
    th.Property("line", th.IntegerType, required=True, description="Line of the event in the archive, from 1."),
    th.Property("timestamp", th.DateTimeType),
)
EXTRA = th.Property("extra", th.ObjectType(additional_properties=True),
                    description="Fields the document does not name, kept as JSON.")


_iso_remembered = functools.lru_cache(maxsize=1 << 16)(unix_iso)


def _iso(value: t.Any) -> str | None:
    """unix_iso, remembered: an archive's lines share few distinct seconds."""
    if isinstance(value, (int, str)):
        return _iso_remembered(value)
    return unix_iso(value)


def _convert(kind: str, value: t.Any) -> t.Any:
    if value is None:
        return None
    if kind == T:
        return _iso(value)
    if kind == B:
        return bool(int(value)) if not isinstance(value, bool) else value
    if kind == I:
        return xr.as_int(value)
    return value if isinstance(value, str) else json.dumps(value)


class ArchiveChildStream(FastRecordMessages, Stream):
    """Fed by event_archives; never requests anything itself."""

    parent_stream_type = None  # set below, after EventArchivesStream exists
    TYPE_CONFORMANCE_LEVEL = BeyondTrustStream.TYPE_CONFORMANCE_LEVEL

    def get_records(self, context: t.Any) -> t.Iterable[dict]:
        return iter(())


def _table_stream(table: str, fields: dict[str, str]) -> type[ArchiveChildStream]:
    schema = th.PropertiesList(
        *ARCHIVE_POSITION,
        th.Property("row_key", th.StringType, required=True, description="The row's id (\"*\": the whole table)."),
        th.Property("event_type", th.StringType, description="model_insert, model_update or model_delete"),
        th.Property("id", th.IntegerType),
        *(th.Property(name, TH_TYPES[kind]) for name, kind in fields.items()),
        EXTRA,
    ).to_dict()
    return type(f"Archive_{table}_Stream", (ArchiveChildStream,), {
        "name": f"archive_{table}", "primary_keys": ("archive_date", "archive_index", "line", "row_key"),
        "schema": schema, "table": table, "__doc__": f"Event-archive changes to the {table} table."})


class ArchiveSessionEventsStream(ArchiveChildStream):
    name = "archive_session_events"
    primary_keys = ("archive_date", "archive_index", "line")
    schema = th.PropertiesList(
        *ARCHIVE_POSITION,
        th.Property("lsid", th.StringType), th.Property("name", th.StringType),
        th.Property("data", th.ObjectType(additional_properties=True)),
        EXTRA,
    ).to_dict()


class ArchiveTruncateEventsStream(ArchiveChildStream):
    name = "archive_truncate_events"
    primary_keys = ("archive_date", "archive_index", "line")
    schema = th.PropertiesList(*ARCHIVE_POSITION, EXTRA).to_dict()


class ArchiveOtherEventsStream(ArchiveChildStream):
    """Lines of a type or table the document does not describe, kept whole."""

    name = "archive_other_events"
    primary_keys = ("archive_date", "archive_index", "line", "row_key")
    schema = th.PropertiesList(
        *ARCHIVE_POSITION,
        th.Property("row_key", th.StringType, required=True),
        th.Property("event_type", th.StringType), th.Property("table", th.StringType),
        th.Property("id", th.IntegerType),
        th.Property("data", th.ObjectType(additional_properties=True),
                    description="The line's data; a value that is not an object is kept as {\"value\": ...}."),
        EXTRA,
    ).to_dict()


TABLE_STREAMS = [_table_stream(table, fields) for table, fields in TABLES.items()]


class EventArchivesStream(BeyondTrustStream):
    """One record per event archive read; its lines go to the archive_* streams."""

    name = "event_archives"
    report = "Archive"
    primary_keys = ("archive_date", "archive_index")
    replication_key = "archive_key"
    is_sorted = True
    schema = th.PropertiesList(
        th.Property("archive_key", th.StringType, required=True, description="<date>/<index, 5 digits>: the bookmark."),
        th.Property("archive_date", th.StringType, required=True),
        th.Property("archive_index", th.IntegerType, required=True),
        th.Property("time", th.DateTimeType),
        th.Property("end_time", th.DateTimeType),
        th.Property("lines", th.IntegerType, description="Events (lines) in the archive."),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._children: dict[str, Stream] = {}

    # children are fed directly, never synced per record
    def generate_child_contexts(self, record: dict, context: t.Any) -> t.Iterable[dict]:
        return iter(())

    def _route_targets(self) -> None:
        self._children = {s.name: s for s in self.child_streams if s.selected}
        for child in self._children.values():
            child._write_schema_message()

    # ------------------------------------------------------------ listing
    def _listing(self, context: t.Any, date: str) -> list[dict]:
        """The event archives ArchiveListing names for ``date``, by index."""
        prepared = self.build_prepared_request(
            method="GET", url=self.get_url(context),
            params={"generate_report": "ArchiveListing", "date": date}, headers=self.http_headers)
        response = self.request_decorator(self._request)(prepared, context)
        try:
            archives = [xr.archive_listing_record(el, date)
                        for el in iter_elements(response, ("event_archive",), "ArchiveListing",
                                                  "archives")]
        finally:
            response.close()
        return sorted(archives, key=lambda a: a["index"] or 0)

    def get_records(self, context: t.Any) -> t.Iterable[dict]:
        self._route_targets()
        bookmark = self.get_starting_replication_key_value(context)
        if bookmark and "/" not in str(bookmark):  # no state yet: the SDK hands back start_date
            bookmark = None
        if bookmark:
            first_day = dt.date.fromisoformat(str(bookmark)[:10])
            done_index = int(str(bookmark).split("/")[1])
        else:
            first_day = _parse_date(self.config["start_date"]) if self.config.get("start_date") \
                else default_start().date()
            done_index = 0
        last_day = dt.datetime.now(dt.timezone.utc).date()
        if self.config.get("end_date"):
            last_day = min(last_day, _parse_date(self.config["end_date"]))
        day = first_day
        checked_gap = not bookmark
        while day <= last_day:
            date = day.isoformat()
            archives = self._listing(context, date)
            if not checked_gap:
                checked_gap = self._warn_if_missing(bookmark, archives, day == first_day, done_index)
            for archive in archives:
                if day == first_day and (archive["index"] or 0) <= done_index:
                    continue
                lines = 0
                for lines in self._read_archive(context, date, archive["index"]):
                    pass
                record = {"archive_key": f"{date}/{archive['index']:05d}", "archive_date": date,
                          "archive_index": archive["index"], "time": archive.get("time"),
                          "end_time": archive.get("end_time"), "lines": lines}
                if not self.selected:
                    # only archive_* streams chosen: the SDK keeps no state for an
                    # unselected stream, but the archive must still count as read
                    self._increment_stream_state(record, context=context)
                yield record
                self._write_state_message()  # the archive is read: say so before the next one
            day += dt.timedelta(days=1)

    def _warn_if_missing(self, bookmark: str, archives: list[dict], same_day: bool, done_index: int) -> bool:
        """After a bookmark, the next archive must still be there; the appliance
        keeps seven active days. Returns True once the check is settled."""
        if not archives:
            if same_day:
                self.logger.warning(
                    "Event archives after %s are no longer on the appliance (it keeps only the last 7 "
                    "active days): events in between are lost. Sync archive streams at least weekly.", bookmark)
                return True
            return False
        indexes = [a["index"] for a in archives]
        if same_day and (done_index in indexes or done_index + 1 in indexes):
            return True
        if not same_day and 1 in indexes:
            return True
        self.logger.warning(
            "Event archives between %s and %s/%05d are missing on the appliance (it keeps only the last 7 "
            "active days): events in between are lost. Sync archive streams at least weekly.",
            bookmark, archives[0]["date"], indexes[0])
        return True

    # ------------------------------------------------------------ one archive
    def _read_archive(self, context: t.Any, date: str, index: int) -> t.Iterator[int]:
        """Stream one archive's lines to the child streams; yields the line count as it grows.

        A body that breaks off is asked again and the lines already written
        are skipped (the archive is immutable once listed)."""
        decorated = self.request_decorator(self._request)
        tries = self.backoff_max_tries()
        base = float(self.config.get("retry_backoff_seconds", 2))
        written = 0
        for attempt in range(tries):
            prepared = self.build_prepared_request(
                method="GET", url=self.get_url(context),
                params={"generate_report": "Archive", "type": "event", "date": date, "index": index},
                headers=self.http_headers)
            response = decorated(prepared, context)
            line_no = 0
            try:
                for line in _archive_lines(response, date, index):
                    line_no += 1
                    if line_no <= written:
                        continue
                    self._route(date, index, line_no, line)
                    written = line_no
                    if line_no % 10000 == 0:
                        yield line_no
                yield line_no
                return
            except BODY_ERRORS as exc:
                if attempt + 1 >= tries:
                    raise BeyondTrustAPIError(
                        f"BeyondTrust Archive {date}/{index}: the download broke off {tries} times "
                        f"({type(exc).__name__}); the archive was not marked as read") from None
                wait = base * 2**attempt
                self.logger.warning("BeyondTrust Archive %s/%s broke off after %d lines (%s); asking again in %.2fs",
                                    date, index, line_no, type(exc).__name__, wait)
                time.sleep(wait)
            finally:
                response.close()

    def _route(self, date: str, index: int, line_no: int, raw: bytes) -> None:
        try:
            event = _json_decode(raw)
        except _JsonError as exc:
            raise BeyondTrustAPIError(
                f"BeyondTrust Archive {date}/{index} line {line_no} is not JSON ({exc})") from None
        if not isinstance(event, dict):
            raise BeyondTrustAPIError(f"BeyondTrust Archive {date}/{index} line {line_no} is not a JSON object")
        kind = event.get("type")
        position = {"archive_date": date, "archive_index": index, "line": line_no,
                    "timestamp": _iso(event.get("timestamp"))}
        children = self._children
        if kind in MODEL_EVENTS:
            if "table" in event:  # one row per line, named outright
                tables = {event["table"]: {str(event.get("id")): event.get("data")}}
            else:
                tables = event.get("data") or {}
            for table, rows in tables.items():
                fields = TABLES.get(table)
                target = children.get(f"archive_{table}" if fields else "archive_other_events")
                if target is None:
                    continue
                for row_key, values in (rows.items() if isinstance(rows, dict) else [("*", rows)]):
                    record = {**position, "row_key": str(row_key), "event_type": kind, "id": xr.as_int(row_key)}
                    if fields is None:
                        record["table"] = table
                        record["data"] = _as_object(values)
                    else:
                        extra = {}
                        for name, value in (values or {}).items():
                            ftype = fields.get(name)
                            if ftype is None:
                                extra[name] = value
                            else:
                                record[name] = _convert(ftype, value)
                        record["extra"] = extra or None
                    target._write_record_message(record)
            return
        if kind == "session_event":
            target = children.get("archive_session_events")
            if target is not None:
                extra = {k: v for k, v in event.items() if k not in ("type", "timestamp", "lsid", "name", "data")}
                target._write_record_message({**position, "lsid": event.get("lsid"), "name": event.get("name"),
                                              "data": event.get("data"), "extra": extra or None})
            return
        if kind == "truncate_model":
            target = children.get("archive_truncate_events")
            if target is not None:
                extra = {k: v for k, v in event.items() if k not in ("type", "timestamp")}
                target._write_record_message({**position, "extra": extra or None})
            return
        target = children.get("archive_other_events")
        if target is not None:
            extra = {k: v for k, v in event.items() if k not in ("type", "timestamp", "data")}
            target._write_record_message({**position, "row_key": "*", "event_type": kind, "table": None,
                                          "id": None, "data": _as_object(event.get("data")),
                                          "extra": extra or None})


class _Prepend:
    """A read() source that first returns ``head``."""

    def __init__(self, head: bytes, raw: t.Any) -> None:
        self.head = head
        self.raw = raw

    def read(self, size: int = -1) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            if size is None or size < 0:
                return head + self.raw.read()
            return head + self.raw.read(max(size - len(head), 0))
        return self.raw.read(size)


def _archive_lines(response: t.Any, date: str, index: int) -> t.Iterator[bytes]:
    raw = response.raw
    raw.decode_content = True
    head = raw.read(2)
    if head == b"\x1f\x8b":
        source: t.Any = gzip.GzipFile(fileobj=_Prepend(head, raw), mode="rb")
    elif head.lstrip()[:1] == b"<":
        body = head + raw.read(65536)
        message = _xml_error_text(body) or body[:300].decode("utf-8", "replace")
        raise BeyondTrustAPIError(f"BeyondTrust Archive {date}/{index} failed: {message}")
    else:  # already decompressed on the way (Content-Encoding): plain JSON lines
        source = _BufferedLines(_Prepend(head, raw))
    try:
        for line in source:
            if line.strip():
                yield line
    except (OSError, gzip.BadGzipFile) as exc:
        if isinstance(exc, BODY_ERRORS):
            raise
        raise BeyondTrustAPIError(f"BeyondTrust Archive {date}/{index} is not a valid gzip file ({exc})") from None


class _BufferedLines:
    def __init__(self, source: _Prepend) -> None:
        self.source = source

    def __iter__(self) -> t.Iterator[bytes]:
        rest = b""
        while True:
            chunk = self.source.read(1 << 16)
            if not chunk:
                break
            rest += chunk
            *lines, rest = rest.split(b"\n")
            yield from lines
        if rest:
            yield rest


def _as_object(value: t.Any) -> dict | None:
    return value if isinstance(value, dict) or value is None else {"value": value}


def _parse_date(value: t.Any) -> dt.date:
    return dt.date.fromisoformat(str(value)[:10])


ARCHIVE_CHILD_STREAMS: list[type[ArchiveChildStream]] = [
    *TABLE_STREAMS, ArchiveSessionEventsStream, ArchiveTruncateEventsStream, ArchiveOtherEventsStream,
]
for _child in ARCHIVE_CHILD_STREAMS:
    _child.parent_stream_type = EventArchivesStream
