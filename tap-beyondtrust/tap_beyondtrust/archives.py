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
import json
import typing as t

from singer_sdk import typing as th
from typing_extensions import override

from tap_beyondtrust import xmlrows as xr
from tap_beyondtrust._sdk import increment_state, write_state
from tap_beyondtrust.archive_reader import ARCHIVE_ID, LISTING_EXTRA, ArchiveFile, ArchiveStream, source_lines
from tap_beyondtrust.client import unix_iso, utc_iso
from tap_beyondtrust.feeds import FedStream

try:  # msgspec comes with singer-sdk[msgspec]: a faster JSON decoder
    from msgspec import DecodeError as _JsonError
    from msgspec.json import decode as _json_decode
except ImportError:  # pragma: no cover
    _json_decode = json.loads  # type: ignore[assignment]
    _JsonError = ValueError  # type: ignore[assignment,misc]

MODEL_EVENTS = ("model_insert", "model_update", "model_delete")
N, B, T, S = "int", "bool", "ts", "str"  # integer, boolean, UNIX time, text
#: the document's tables and field types (model_insert / model_update)
TABLES: dict[str, dict[str, str]] = {
    "customer_client": {"client_type": S, "connected": B, "created_timestamp": T, "elevated": B,
                        "hostname": S, "operating_system": S, "private_ip": S, "public_ip": S,
                        "support_session_id": N},
    "queue": {"code_name": S, "created_timestamp": T, "name": S, "support_team_id": S, "type": S},
    "representative": {"connected": B, "console_in_focus": B, "created_timestamp": T, "hostname": S,
                       "operating_system": S, "private_display_name": S, "private_ip": S,
                       "public_display_name": S, "public_ip": S, "queue_id": N, "routing_available": B,
                       "routing_busy": B, "routing_enabled": B, "routing_idle": B,
                       "selected_support_session_id": N, "skill_code_names": S, "type": S,
                       "user_id": N, "username": S},
    "representative_queue": {"created_timestamp": T, "queue_id": N, "representative_id": N, "role": S},
    "representative_support_session": {"created_timestamp": T, "representative_id": N,
                                       "selected_support_session_service_tool": S,
                                       "support_session_id": N},
    "representative_support_session_tool": {"created_timestamp": T, "representative_id": N,
                                            "support_session_id": N, "tool": S},
    "support_session": {"created_timestamp": T, "customer_company": S, "customer_company_code": S,
                        "customer_description": S, "customer_name": S, "estimated_pickup_timestamp": T,
                        "issue_code_name": S, "issue_description": S, "lsid": S,
                        "primary_team_queue_id": N, "priority": N, "public_site_id": N,
                        "public_site_name": S, "queue_entry_timestamp": T, "queue_id": N,
                        "start_method": S},
    "support_session_attribute": {"code_name": S, "created_timestamp": T, "support_session_id": N,
                                  "value": S},
    "support_session_skill": {"code_name": S, "created_timestamp": T, "support_session_id": N},
}
TH_TYPES = {N: th.IntegerType, B: th.BooleanType, T: th.DateTimeType, S: th.StringType}

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


CONVERTERS: dict[str, t.Callable[[t.Any], t.Any]] = {N: _to_int, B: _to_bool, T: _to_time, S: _to_str}
#: table -> field -> converter
TABLE_CONVERTERS = {table: {name: CONVERTERS[kind] for name, kind in fields.items()}
                    for table, fields in TABLES.items()}


class ArchiveChildStream(FedStream):
    """Fed by event_archives (its parent_stream_type, set below); never requests anything itself."""


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


class EventArchivesStream(ArchiveStream):
    """One record per event archive read; its lines go to the archive_* streams."""

    name = "event_archives"
    kind = "event"
    shape_note = "kept as sent in archive_other_events or in the row's extra (logged once)"
    replication_key = "archive_key"
    schema = th.PropertiesList(
        *ARCHIVE_ID,
        th.Property("time", th.DateTimeType),
        th.Property("end_time", th.DateTimeType),
        th.Property("lines", th.IntegerType, description="Events (lines) in the archive."),
        LISTING_EXTRA,
    ).to_dict()

    @override
    def get_records(self, context: t.Any) -> t.Iterable[dict]:
        self.open_targets()
        bookmark = self.bookmark(context)
        if bookmark:
            first_day = dt.date.fromisoformat(bookmark[:10])
            done_index = int(bookmark.split("/")[1])
        else:
            first_day = self.first_day()
            done_index = 0
        last_day = self.last_day()
        day = first_day
        checked_gap = not bookmark
        while day <= last_day:
            date = day.isoformat()
            archives = self.listing(context, date)
            if not checked_gap:
                checked_gap = self._warn_if_missing(bookmark, archives, day == first_day, done_index)
            for archive in archives:
                index = archive["index"]
                if day == first_day and (index or 0) <= done_index:
                    continue
                lines = 0
                for lines, line in enumerate(self.download(context, ArchiveFile("event", date, index)), 1):
                    self._route(date, index, lines, line)
                record = {"archive_key": f"{date}/{index:05d}", "archive_date": date,
                          "archive_index": index, "time": archive.get("time"),
                          "end_time": archive.get("end_time"), "lines": lines, "extra": archive.get("extra")}
                if not self.selected:
                    # only archive_* streams chosen: the SDK keeps no state for an
                    # unselected stream, but the archive must still count as read
                    increment_state(self, record, context)
                yield record
                write_state(self)  # the archive is read: say so before the next one
            day += dt.timedelta(days=1)

    @override
    def units(self, source: t.Any, archive: ArchiveFile) -> t.Iterator[bytes]:
        """The archive's lines (JSON, one event each); blank ones are not lines."""
        for line in source_lines(source):
            if line.strip():
                yield line

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
        children = self.targets
        if kind == "session_event":
            data = event.get("data")
            if not (data is None or isinstance(data, dict)) or not _is_text(event.get("lsid")) \
                    or not _is_text(event.get("name")):
                self._other_line(event, position, "a session_event line in an unexpected shape")
                return
            target = children.get("archive_session_events")
            if target is not None:
                extra = _line_extra(event, SESSION_EVENT_KEYS, position)
                target.feed({**position, "lsid": event.get("lsid"), "name": event.get("name"),
                                              "data": data, "extra": extra})
            return
        if kind == "truncate_model":
            target = children.get("archive_truncate_events")
            if target is not None:
                target.feed({**position, "extra": _line_extra(event, LINE_KEYS, position)})
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
        children = self.targets
        for table, rows in tables.items():
            converters = TABLE_CONVERTERS.get(table)
            if converters is None:  # a table the document does not name: kept whole
                target = children.get("archive_other_events")
                if target is not None:
                    for row_key, values in (rows.items() if isinstance(rows, dict) else [("*", rows)]):
                        target.feed({
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
                                self.warn_shape(f"{table}.{name} values that are not of the documented type "
                                                 f"(kept in extra)")
                            else:
                                record[name] = converted
                record["extra"] = extra
                target.feed(record)

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
        self.warn_shape(what)
        target = self.targets.get("archive_other_events")
        if target is not None:
            target.feed({
                **position, "row_key": f"{table}/{row_key}" if table else row_key, "event_type": kind,
                "table": table, "id": xr.as_int(row_key) if table else None, "data": data, "extra": extra})


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


ARCHIVE_CHILD_STREAMS: list[type[ArchiveChildStream]] = [
    *TABLE_STREAMS, ArchiveSessionEventsStream, ArchiveTruncateEventsStream, ArchiveOtherEventsStream,
]
for _child in ARCHIVE_CHILD_STREAMS:
    _child.parent_stream_type = EventArchivesStream
