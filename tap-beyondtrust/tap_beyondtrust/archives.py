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
    fetch_rows,
    unix_iso,
    utc_iso,
)

try:  # msgspec comes with singer-sdk[msgspec]: a faster JSON decoder
    from msgspec import DecodeError as _JsonError
    from msgspec.json import decode as _json_decode
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


#: a value that does not fit its documented type: the field becomes null and
#: the value as sent is kept in ``extra``
BAD = object()
BOOL_TEXT = {"1": True, "0": False, "true": True, "false": False}


def _to_bool(value: t.Any) -> t.Any:
    """The document's booleans are 1/0; true/false (any case) too; blank is null."""
    if value is True or value is False:
        return value
    if type(value) is int:
        return True if value == 1 else False if value == 0 else BAD
    if isinstance(value, str):
        text = value.strip()
        return BOOL_TEXT.get(text.lower(), BAD) if text else None
    if isinstance(value, float) and value in (0.0, 1.0):
        return value == 1.0
    return BAD


def _to_int(value: t.Any) -> t.Any:
    if type(value) is int:
        return value
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        try:
            return int(text)
        except ValueError:
            return BAD
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return BAD


def _to_time(value: t.Any) -> t.Any:
    """A UNIX timestamp as UTC ISO 8601; ISO text is tolerated; blank is null."""
    if type(value) is int:
        converted = _iso_remembered(value)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        converted = _iso_remembered(text) if text.isdigit() else utc_iso(text)
    elif isinstance(value, float):
        converted = unix_iso(value)
    else:
        return BAD
    return BAD if converted is None else converted


def _to_str(value: t.Any) -> t.Any:
    return value if isinstance(value, str) else json.dumps(value)


CONVERTERS: dict[str, t.Callable[[t.Any], t.Any]] = {I: _to_int, B: _to_bool, T: _to_time, S: _to_str}
#: table -> field -> converter
TABLE_CONVERTERS = {table: {name: CONVERTERS[kind] for name, kind in fields.items()}
                    for table, fields in TABLES.items()}
MAX_SHAPE_WARNINGS = 20


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
    """Lines of a type, table or shape the document does not describe, kept whole."""

    name = "archive_other_events"
    primary_keys = ("archive_date", "archive_index", "line", "row_key")
    schema = th.PropertiesList(
        *ARCHIVE_POSITION,
        th.Property("row_key", th.StringType, required=True,
                    description="<table>/<row id> for a row of a model line; \"*\" for a whole line."),
        th.Property("event_type", th.StringType, description="The line's type."),
        th.Property("table", th.StringType),
        th.Property("id", th.IntegerType),
        th.Property("data", th.ObjectType(additional_properties=True),
                    description="The line's (or row's) data; a value that is not an object is kept as "
                                "{\"value\": ...}, a line that is not JSON as {\"text\": ...}."),
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
        th.Property("extra", th.ObjectType(additional_properties=True),
                    description="Elements of the archive's ArchiveListing entry the document does not name."),
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
        archives = fetch_rows(self, context, {"generate_report": "ArchiveListing", "date": date},
                              ("event_archive",), "archives", lambda el: xr.archive_listing_record(el, date))
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
                          "end_time": archive.get("end_time"), "lines": lines, "extra": archive.get("extra")}
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
        """One archive line to the stream of its table or kind; a line in any
        other shape goes whole to archive_other_events (never dropped)."""
        try:
            event = _json_decode(raw)
        except _JsonError:
            text = raw.rstrip(b"\r\n").decode("utf-8", "replace")
            self._other(_position(date, index, line_no), None, None, {"text": text}, "a line that is not JSON")
            return
        if not isinstance(event, dict):
            self._other(_position(date, index, line_no), None, None, {"value": event},
                        "a line that is not a JSON object")
            return
        kind = event.get("type")
        position = {"archive_date": date, "archive_index": index, "line": line_no,
                    "timestamp": _iso(event.get("timestamp"))}
        if kind in MODEL_EVENTS:
            self._route_model(kind, event, position)
            return
        children = self._children
        if kind == "session_event":
            data = event.get("data")
            if not (data is None or isinstance(data, dict)) or not _is_text(event.get("lsid")) \
                    or not _is_text(event.get("name")):
                self._other_line(event, position, "a session_event line in an unexpected shape")
                return
            target = children.get("archive_session_events")
            if target is not None:
                extra = _line_extra(event, SESSION_EVENT_KEYS, position)
                target._write_record_message({**position, "lsid": event.get("lsid"), "name": event.get("name"),
                                              "data": data, "extra": extra})
            return
        if kind == "truncate_model":
            target = children.get("archive_truncate_events")
            if target is not None:
                target._write_record_message({**position, "extra": _line_extra(event, LINE_KEYS, position)})
            return
        self._other_line(event, position, f"lines of type {str(kind)[:40]!r}")

    def _route_model(self, kind: str, event: dict, position: dict) -> None:
        """model_insert / model_update / model_delete: one record per (table, row)."""
        if "table" in event:  # one row per line, named outright
            table = event["table"]
            row_id = event.get("id")
            if not isinstance(table, str) or not (row_id is None or isinstance(row_id, (int, str))):
                self._other_line(event, position, f"{kind} lines in an unexpected shape")
                return
            tables: t.Any = {table: {"*" if row_id is None else str(row_id): event.get("data")}}
            line_extra = _line_extra(event, TABLE_LINE_KEYS, position)
        else:
            tables = event.get("data")
            if not isinstance(tables, dict) or not tables:
                self._other_line(event, position, f"{kind} lines without a table")
                return
            line_extra = _line_extra(event, LINE_KEYS, position)
        children = self._children
        for table, rows in tables.items():
            converters = TABLE_CONVERTERS.get(table)
            if converters is None:  # a table the document does not name: kept whole
                target = children.get("archive_other_events")
                if target is not None:
                    for row_key, values in (rows.items() if isinstance(rows, dict) else [("*", rows)]):
                        target._write_record_message({
                            **position, "row_key": f"{table}/{row_key}", "event_type": kind, "table": table,
                            "id": xr.as_int(row_key), "data": _as_object(values), "extra": line_extra})
                continue
            target = children.get(f"archive_{table}")
            if rows is None:
                rows = {"*": None}  # the whole table
            elif not isinstance(rows, dict):
                self._other(position, kind, table, _as_object(rows),
                            f"{kind} rows of {table} that are not an object", extra=line_extra)
                continue
            for row_key, values in rows.items():
                if values is not None and not isinstance(values, dict):
                    self._other(position, kind, table, _as_object(values),
                                f"{kind} rows of {table} that are not an object", row_key, extra=line_extra)
                    continue
                if target is None:
                    continue
                record = {**position, "row_key": row_key, "event_type": kind, "id": xr.as_int(row_key)}
                extra = dict(line_extra) if line_extra else None
                if values:
                    for name, value in values.items():
                        convert = converters.get(name)
                        if convert is None:
                            if extra is None:
                                extra = {}
                            _keep(extra, name, value, line_extra)
                        elif value is None:
                            record[name] = None
                        else:
                            converted = convert(value)
                            if converted is BAD:
                                record[name] = None
                                if extra is None:
                                    extra = {}
                                _keep(extra, name, value, line_extra)
                                self._warn_shape(f"{table}.{name} values that are not of the documented type "
                                                 f"(kept in extra)")
                            else:
                                record[name] = converted
                record["extra"] = extra
                target._write_record_message(record)

    def _other_line(self, event: dict, position: dict, what: str) -> None:
        """A whole line to archive_other_events: its data in ``data``, every other key in ``extra``."""
        kind = event.get("type")
        extra = _line_extra(event, LINE_KEYS, position) or {}
        if not _is_text(kind):
            extra["type"] = kind
            kind = None
        self._other(position, kind, None, _as_object(event.get("data")), what, extra=extra or None)

    def _other(self, position: dict, kind: t.Any, table: str | None, data: dict | None, what: str,
               row_key: str = "*", *, extra: dict | None = None) -> None:
        self._warn_shape(what)
        target = self._children.get("archive_other_events")
        if target is not None:
            target._write_record_message({
                **position, "row_key": f"{table}/{row_key}" if table else row_key, "event_type": kind,
                "table": table, "id": xr.as_int(row_key) if table else None, "data": data, "extra": extra})

    def _warn_shape(self, what: str) -> None:
        """One warning per kind of unexpected line (at most MAX_SHAPE_WARNINGS kinds)."""
        warned = self.__dict__.setdefault("_shape_warnings", set())
        if what in warned or len(warned) >= MAX_SHAPE_WARNINGS:
            return
        warned.add(what)
        self.logger.warning("Event archives hold %s, which the document does not describe: kept as sent in "
                            "archive_other_events or in the row's extra (logged once)", what)


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


def _archive_source(response: t.Any, date: str, index: int, kind: str = "event") -> t.Any:
    """The archive's decompressed bytes as a read() source, decompressed as they arrive; an
    XML answer (an ``<error>``) fails with the appliance's message."""
    raw = response.raw
    raw.decode_content = True
    head = raw.read(2)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=_Prepend(head, raw), mode="rb")
    if head.lstrip()[:1] == b"<":
        body = head + raw.read(65536)
        message = _xml_error_text(body) or body[:300].decode("utf-8", "replace")
        what = "Archive" if kind == "event" else f"{kind} Archive"
        raise BeyondTrustAPIError(f"BeyondTrust {what} {date}/{index} failed: {message}")
    return _Prepend(head, raw)  # already decompressed on the way (Content-Encoding)


def _archive_lines(response: t.Any, date: str, index: int) -> t.Iterator[bytes]:
    source = _archive_source(response, date, index)
    if isinstance(source, _Prepend):  # plain JSON lines
        source = _BufferedLines(source)
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


#: the keys of a line the tap maps into columns; every other key goes to the row's ``extra``
LINE_KEYS = frozenset(("type", "timestamp", "data"))
TABLE_LINE_KEYS = LINE_KEYS | {"table", "id"}
SESSION_EVENT_KEYS = LINE_KEYS | {"lsid", "name"}
#: a line key whose name a row field of ``extra`` already holds is kept under this prefix
LINE_PREFIX = "line:"


def _line_extra(event: dict, mapped: frozenset, position: dict) -> dict | None:
    """The keys of a line that no column holds (a ``timestamp`` that is not a
    time included), for the ``extra`` of every row the line gives."""
    extra = {k: v for k, v in event.items() if k not in mapped}
    if position.get("timestamp") is None and event.get("timestamp") is not None:
        extra["timestamp"] = event["timestamp"]
    return extra or None


def _keep(extra: dict, name: str, value: t.Any, line_extra: dict | None) -> None:
    """A row field in ``extra``; a line key of the same name moves to ``line:<name>``."""
    if line_extra and name in line_extra and LINE_PREFIX + name not in extra:
        extra[LINE_PREFIX + name] = extra.pop(name, line_extra[name])
    extra[name] = value


def _as_object(value: t.Any) -> dict | None:
    return value if isinstance(value, dict) or value is None else {"value": value}


def _position(date: str, index: int, line_no: int) -> dict:
    return {"archive_date": date, "archive_index": index, "line": line_no, "timestamp": None}


def _is_text(value: t.Any) -> bool:
    return value is None or isinstance(value, str)


def _parse_date(value: t.Any) -> dt.date:
    return dt.date.fromisoformat(str(value)[:10])


ARCHIVE_CHILD_STREAMS: list[type[ArchiveChildStream]] = [
    *TABLE_STREAMS, ArchiveSessionEventsStream, ArchiveTruncateEventsStream, ArchiveOtherEventsStream,
]
for _child in ARCHIVE_CHILD_STREAMS:
    _child.parent_stream_type = EventArchivesStream
