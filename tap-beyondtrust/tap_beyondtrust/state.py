"""State archives: one gzip JSON object per archive, parsed as a stream, one stream per table.

The document: ``Archive&type=state`` is "a single JSON object" of tables ->
ids -> fields ("if a table does not have any data, its value is null"), up to
4 GB decompressed, written every thirty minutes and kept for seven active days.
``state_archives`` lists each date's state archives (ArchiveListing), picks
those the ``state_archives`` setting asks for and downloads each one; the
object is read with ijson's event parser as it is decompressed, one row at a
time (never the whole object, nor a whole table, in memory), and each row is
written straight to the stream of its table (``state_<table>``; a table the
document does not name goes to ``state_other_tables``).

``state_archives`` setting:

- ``latest`` (default): the newest state archive at each sync, read whole.
  The state_* streams are then full-table snapshots keyed by the row
  (``row_key``): each sync upserts the appliance's tables as they were at that
  archive, and with ``emit_activate_version_messages`` every state_* stream
  gets an ACTIVATE_VERSION once the whole archive has been read (never for a
  sync that broke off), so a row gone from the newest snapshot is marked
  deleted (or removed) by a target that reads them (target-postgres).
- ``daily``: the last state archive of each UTC date before today, from the
  bookmark (or start_date) on; ``all``: every state archive from the bookmark
  on. Both keep history: rows are keyed by archive and row
  (``archive_date``, ``archive_index``, ``row_key``); the bookmark
  (``archive_key`` = ``<date>/<index, 5 digits>``) moves past each archive
  once it has been read whole, so a killed sync resumes at the archive it was
  in.
"""

from __future__ import annotations

import datetime as dt
import time
import typing as t

import ijson
from singer_sdk import typing as th
from typing_extensions import override

from tap_beyondtrust import xmlrows as xr
from tap_beyondtrust._sdk import increment_state, write_state
from tap_beyondtrust.archive_reader import ARCHIVE_ID, LISTING_EXTRA, ArchiveFile, ArchiveStream, archive_key
from tap_beyondtrust.archives import BAD, EXTRA, TABLE_CONVERTERS, TABLES, TH_TYPES, _as_object
from tap_beyondtrust.client import BeyondTrustAPIError
from tap_beyondtrust.feeds import FedStream

LATEST, DAILY, ALL = "latest", "daily", "all"
#: days back the latest state archive is looked for (the appliance keeps seven active days)
LATEST_LOOKBACK_DAYS = 8
PARSE_BUFFER = 1 << 16
STATE_POSITION = (
    th.Property("archive_date", th.StringType, required=True, description="The state archive's date."),
    th.Property("archive_index", th.IntegerType, required=True, description="Its index on that date."),
    th.Property("archive_time", th.DateTimeType, description="When the snapshot was taken (UTC)."),
    th.Property("row_key", th.StringType, required=True, description="The row's id, as the object's key."),
)
SCALARS = frozenset(("null", "boolean", "integer", "double", "number", "string"))


def state_mode(config: t.Mapping) -> str:
    return str(config.get("state_archives") or LATEST)


class StateChildStream(FedStream):
    """Fed by state_archives (its parent_stream_type, set below); never requests anything itself."""
    row_keys: t.ClassVar[tuple[str, ...]] = ("row_key",)

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        if state_mode(self.config) == LATEST:  # a snapshot of the table: one row per row of the appliance's
            self.primary_keys = self.row_keys
        else:  # history: one row per archive and row
            self.primary_keys = ("archive_date", "archive_index", *self.row_keys)


def _table_stream(table: str, fields: dict[str, str]) -> type[StateChildStream]:
    schema = th.PropertiesList(
        *STATE_POSITION,
        th.Property("id", th.IntegerType, description="The row's id (\"an integer that identifies this table row\")."),
        *(th.Property(name, TH_TYPES[kind]) for name, kind in fields.items()),
        EXTRA,
    ).to_dict()
    return type(f"State_{table}_Stream", (StateChildStream,), {
        "name": f"state_{table}", "schema": schema, "table": table,
        "__doc__": f"The {table} table of the state archives."})


class StateOtherTablesStream(StateChildStream):
    """Rows of tables the document does not name (and rows or tables that are not objects), kept
    whole: the document names none of their fields, so all of them are in ``extra``."""

    name = "state_other_tables"
    row_keys = ("table", "row_key")
    schema = th.PropertiesList(
        *STATE_POSITION,
        th.Property("table", th.StringType, required=True),
        th.Property("id", th.IntegerType),
        th.Property("extra", th.ObjectType(additional_properties=True),
                    description="The row's fields; a value that is not an object is kept as {\"value\": ...}."),
    ).to_dict()


STATE_TABLE_STREAMS = [_table_stream(table, fields) for table, fields in TABLES.items()]


class StateArchivesStream(ArchiveStream):
    """One record per state archive read; its rows go to the state_* streams."""

    name = "state_archives"
    kind = "state"
    shape_note = "kept as sent in state_other_tables or in the row's extra (logged once)"
    schema = th.PropertiesList(
        *ARCHIVE_ID,
        th.Property("time", th.DateTimeType, description="When the snapshot was taken (UTC)."),
        th.Property("event_archive_index", th.IntegerType,
                    description="The event archive that starts right after the snapshot."),
        th.Property("tables", th.ObjectType(additional_properties=True),
                    description="Table -> rows read (null: the table had no data)."),
        th.Property("rows", th.IntegerType, description="Rows read, every table together."),
        LISTING_EXTRA,
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self.mode = state_mode(self.config)
        # latest: a full-table snapshot each sync; daily / all: incremental by archive
        self.replication_key = None if self.mode == LATEST else "archive_key"

    @property
    def backfill(self) -> bool:
        """An end_date before today: the newest state archive is not this sync's to snapshot."""
        return bool(self.config.get("end_date")) and self.last_day() < self.today()

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        return super().emit_activate_version_messages and not (self.mode == LATEST and self.backfill)

    # ------------------------------------------------------------ which archives
    def _latest(self, context: t.Any) -> list[dict]:
        if self.backfill:  # a past snapshot must neither overwrite today's rows nor delete them
            self.logger.info("state_archives=latest reads no state archive in a sync with an end_date before "
                             "today (a backfill); set state_archives to daily or all to read past ones")
            return []
        day = self.last_day()
        first = self.first_day()
        for _ in range(LATEST_LOOKBACK_DAYS):
            if day < first:
                break
            archives = self.listing(context, day.isoformat())
            if archives:
                return [archives[-1]]
            day -= dt.timedelta(days=1)
        self.logger.warning("No state archive is listed on the appliance for the last %d days up to %s: "
                            "nothing to read (is the state archive API enabled?)", LATEST_LOOKBACK_DAYS, day)
        return []

    def _since_bookmark(self, context: t.Any) -> t.Iterator[dict]:
        done = self.bookmark(context)
        day = dt.date.fromisoformat(done[:10]) if done else self.first_day()
        last = self.last_day()
        today = self.today()
        first_listing = True
        while day <= last:
            if self.mode == DAILY and day >= today:
                break  # today's last archive is not written yet
            archives = self.listing(context, day.isoformat())
            if first_listing and done and not any(archive_key(a) >= done for a in archives):
                self.logger.warning(
                    "State archives after %s are no longer on the appliance (it keeps only the last 7 active "
                    "days). Sync state archives at least weekly.", done)
            first_listing = False
            chosen = archives[-1:] if self.mode == DAILY else archives
            for archive in chosen:
                if archive_key(archive) > done:
                    yield archive
            day += dt.timedelta(days=1)

    # ------------------------------------------------------------ reading
    @override
    def get_records(self, context: t.Any) -> t.Iterable[dict]:
        snapshot = self.mode == LATEST and self.emit_activate_version_messages
        # the snapshot's version: its rows carry it, and its ACTIVATE_VERSION ends it
        version = int(time.time() * 1000) if snapshot else None
        self.open_targets(version)
        archives: t.Iterable[dict] = self._latest(context) if self.mode == LATEST else self._since_bookmark(context)
        for archive in archives:
            date, index = archive["date"], archive["index"]
            position = {"archive_date": date, "archive_index": index, "archive_time": archive.get("time")}
            tables: dict[str, t.Any] = {}
            rows = 0
            for table, row_key, value in self.download(context, ArchiveFile("state", date, index)):
                if row_key is None and value is None:  # a table with no data
                    tables.setdefault(table, None)
                    continue
                tables[table] = (tables.get(table) or 0) + 1
                rows += 1
                self._route(position, table, row_key, value)
            if version is not None:  # the snapshot is whole: rows not in it are gone
                for child in self.targets.values():
                    child.activate(version)
            record = {"archive_key": archive_key(archive), "archive_date": date, "archive_index": index,
                      "time": archive.get("time"), "event_archive_index": archive.get("event_archive_index"),
                      "tables": tables, "rows": rows, "extra": archive.get("extra")}
            if not self.selected and self.replication_key:
                increment_state(self, record, context)
            yield record
            if self.replication_key:
                write_state(self)  # the archive is read: say so before the next one

    @override
    def units(self, source: t.Any, archive: ArchiveFile) -> t.Iterator[tuple[str, str | None, t.Any]]:
        return state_rows(source, archive.date, archive.index)

    def _route(self, position: dict, table: str, row_key: str | None, value: t.Any) -> None:
        converters = TABLE_CONVERTERS.get(table)
        key = "*" if row_key is None else row_key
        if converters is None or not isinstance(value, dict):
            if converters is not None or row_key is None:
                self.warn_shape(f"{table} rows that are not an object" if converters is not None
                                else f"a {table} table that is not an object of rows")
            target = self.targets.get("state_other_tables")
            if target is not None:
                target.feed({**position, "table": table, "row_key": key, "id": xr.as_int(row_key),
                             "extra": _as_object(value)})
            return
        target = self.targets.get(f"state_{table}")
        if target is None:
            return
        record: dict[str, t.Any] = {**position, "row_key": key, "id": xr.as_int(row_key)}
        extra = None
        for name, field in value.items():
            convert = converters.get(name)
            if convert is None:
                if extra is None:
                    extra = {}
                extra[name] = field
            elif field is None:
                record[name] = None
            else:
                converted = convert(field)
                if converted is BAD:
                    record[name] = None
                    if extra is None:
                        extra = {}
                    extra[name] = field
                    self.warn_shape(f"{table}.{name} values that are not of the documented type (kept in extra)")
                else:
                    record[name] = converted
        record["extra"] = extra
        target.feed(record)


def state_rows(source: t.Any, date: str, index: int) -> t.Iterator[tuple[str, str | None, t.Any]]:
    """(table, row id, row) of a state archive object, one row at a time.

    A table whose value is null gives one (table, None, None); a table whose
    value is not an object gives (table, None, value)."""
    events = ijson.basic_parse(source, use_float=True, buf_size=PARSE_BUFFER)
    try:
        first = next(events, None)
        if first is None:
            raise BeyondTrustAPIError(f"BeyondTrust state Archive {date}/{index} is empty")
        if first[0] != "start_map":
            raise BeyondTrustAPIError(f"BeyondTrust state Archive {date}/{index} is not a JSON object "
                                      f"(the document: one object of tables)")
        for event, value in events:
            if event == "end_map":
                return
            table = value  # map_key
            event, value = next(events)
            if event == "null":
                yield table, None, None
                continue
            if event != "start_map":
                yield table, None, _build(event, value, events)
                continue
            for event, value in events:
                if event == "end_map":
                    break
                row_key = value
                event, value = next(events)
                yield table, row_key, _build(event, value, events)
    except ijson.JSONError as exc:
        raise BeyondTrustAPIError(f"BeyondTrust state Archive {date}/{index} is not valid JSON ({exc})") from None


def _build(event: str, value: t.Any, events: t.Iterator[tuple[str, t.Any]]) -> t.Any:
    """The value that starts with ``event``, read from ``events``."""
    if event == "start_map":
        obj: dict[str, t.Any] = {}
        for event, value in events:
            if event == "end_map":
                return obj
            key = value
            event, value = next(events)
            obj[key] = value if event in SCALARS else _build(event, value, events)
        raise BeyondTrustAPIError("a state archive ends inside an object")
    if event == "start_array":
        items: list[t.Any] = []
        for event, value in events:
            if event == "end_array":
                return items
            items.append(value if event in SCALARS else _build(event, value, events))
        raise BeyondTrustAPIError("a state archive ends inside an array")
    return value


STATE_CHILD_STREAMS: list[type[StateChildStream]] = [*STATE_TABLE_STREAMS, StateOtherTablesStream]
for _child in STATE_CHILD_STREAMS:
    _child.parent_stream_type = StateArchivesStream
