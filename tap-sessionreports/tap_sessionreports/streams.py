"""Fudo PAM report streams (vendor-docs/fudo-pam-api-v2-reports.txt).

Attribute names are the ones API-CONTRACT.md restores, in the document's
table order; ids are 64-bit integers written as strings and stay strings.
"""

from __future__ import annotations

import csv
import io
import typing as t
from functools import cached_property
from urllib.parse import urlencode, urlparse

import backoff
import requests
import urllib3
from singer_sdk import typing as th
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from typing_extensions import override

from tap_sessionreports._sdk import tap_of
from tap_sessionreports.client import (
    SessionReportsListStream,
    SessionReportsStream,
    endpoint_of,
    envelope_records,
    error_text,
    html_title,
    parse_datetime,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

#: The predefined report definitions (defined_report_id: title), as documented.
PREDEFINED_REPORTS = {
    "5": "System report",
    "6": "Account access report",
    "7": "Safe access report",
    "8": "Server access report",
    "9": "Session approvals by user",
    "10": "Session sharing invites by user",
    "11": "Session summary",
    "12": "Sessions by server report",
    "13": "User access report",
    "14": "User activity report",
    "15": "User privilege report",
    "16": "User report",
}

#: The reports stream's state key: {report id: modified_at} of the reports
#: seen not ready, re-checked by id at every sync until ready or gone.
NOT_READY_KEY = "not_ready_reports"
#: Ids per re-check request (``filter=id.in(...)``), keeping URLs short.
RECHECK_BATCH = 50

EXTRA = th.Property(
    "extra",
    th.ObjectType(additional_properties=True),
    description="Attributes the API returned that the document does not name, kept as they came.",
)


class ReportsStream(SessionReportsListStream):
    """Generated reports (ReportModel), ``GET /api/v2/report``."""

    name = "reports"
    default_path = "/api/v2/report"
    model = "report"
    id_fields = ("id", "defined_report_id", "user_id")
    datetime_fields = ("generated_at", "created_at", "modified_at")
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True, description="Unique report id."),
        th.Property("title", th.StringType, description="Report title."),
        th.Property("defined_report_id", th.StringType, description="Defined report identifier."),
        th.Property("content", th.StringType, description="Report content (expensive; often empty in lists)."),
        th.Property("generated_at", th.DateTimeType, description="When the report was generated."),
        th.Property("user_id", th.StringType, description="User who created the report."),
        th.Property("query_filter", th.StringType, description="Query filter used to create the report."),
        th.Property("query_order", th.StringType, description="Query order used to create the report."),
        th.Property("status", th.StringType, description="Generation status."),
        th.Property("created_at", th.DateTimeType, description="Creation time."),
        th.Property("modified_at", th.DateTimeType, required=True, description="Last modification time."),
        th.Property("is_ready", th.BooleanType, description="Whether the report content can be downloaded."),
        EXTRA,
    ).to_dict()

    @cached_property
    def _rows_wanted(self) -> bool:
        return any(child.selected or child.has_selected_descendents for child in self.child_streams)

    @override
    def extra_filter_terms(self) -> list[str]:
        query_filter = (self.config.get("query_filter") or "").strip().strip(",")
        return [query_filter] if query_filter else []

    @override
    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[dict]:
        """Only ready reports have content to read (and only if report_rows is wanted)."""
        if self._rows_wanted and is_ready(record):
            yield {"report_id": record["id"], "report_modified_at": record["modified_at"]}

    # ------------------------------------------------------------ not ready reports
    def not_ready(self) -> dict:
        """{report id: modified_at} of the reports seen not ready, kept in the
        stream's state (mutated in place, so every STATE message holds it as
        it is at that moment)."""
        state = self.get_context_state(None)
        pending = state.get(NOT_READY_KEY)
        if not isinstance(pending, dict):
            pending = state[NOT_READY_KEY] = {}
        return pending

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        """The list by modified_at, then the reports seen not ready by earlier
        syncs that the list did not hand out again, re-checked by id.

        The document does not promise that a report's modified_at moves when it
        becomes ready, so a report seen not ready is remembered (state) and
        asked for by id at every sync until it is ready (then it goes out with
        its rows) or gone. An id leaves the state only after its record and
        rows are written: a sync killed in its CSV resumes it.
        """
        pending = self.not_ready()
        unlisted = set(pending)  # remembered ids the list has not handed out again
        for record in super().get_records(context):
            report_id = record.get("id")
            ready = is_ready(record)
            yield record  # the SDK syncs its rows before coming back here
            if report_id is None:
                continue
            if report_id.__class__ is not str:
                report_id = str(report_id)
            if ready:
                if pending:
                    pending.pop(report_id, None)
            else:
                pending[report_id] = record.get("modified_at")
            if unlisted:
                unlisted.discard(report_id)
        waiting = [report_id for report_id in pending if report_id in unlisted]
        if waiting:
            yield from self._recheck(waiting, pending)

    def _recheck(self, ids: list[str], pending: dict) -> t.Iterator[dict]:
        self.logger.info("Re-checking %d report(s) seen not ready by an earlier sync", len(ids))
        self.holding_bookmark = True  # re-checked reports are older than the bookmark
        try:
            for start in range(0, len(ids), RECHECK_BATCH):
                batch = ids[start:start + RECHECK_BATCH]
                found = {str(record.get("id")): record for record in self._reports_by_id(batch)}
                for report_id in batch:
                    record = found.get(report_id)
                    if record is None:
                        self.logger.info("Report %s, seen not ready, is no longer listed (deleted, or outside "
                                         "query_filter); dropped from the state", report_id)
                        pending.pop(report_id, None)
                    elif is_ready(record):
                        self.logger.info("Report %s, seen not ready, is ready now; reading its rows", report_id)
                        yield record
                        pending.pop(report_id, None)
        finally:
            self.holding_bookmark = False

    def _reports_by_id(self, ids: list[str]) -> t.Iterator[dict]:
        """``GET /api/v2/report?filter=id.in(<ids>)``, the documented filter
        syntax, paged by limit/offset in id order until every id came or a
        page is empty (a report deleted since is simply not in the answer)."""
        terms = [f"id.in({','.join(ids)})", *self.extra_filter_terms()]
        limit = min(int(self.config["page_size"]), len(ids))
        wanted = set(ids)
        send = self.request_decorator(self.send_request)
        url = self.get_url(None)
        offset = 0
        while True:
            query = urlencode({"filter": ",".join(terms), "order": "id", "limit": limit, "offset": offset},
                              safe="(),!")
            prepared = self.build_prepared_request(method="GET", url=f"{url}?{query}", headers=self.http_headers)
            records = envelope_records(send(prepared, None), self.model)
            if not records:
                return
            if not {str(record.get("id")) for record in records} <= wanted:
                msg = (f"GET {self.path} answered reports other than the ids asked for "
                       "(filter=id.in(...)): the server ignores the filter")
                raise FatalAPIError(msg)
            yield from records
            offset += len(records)
            if offset >= len(ids):
                return  # one record per id: all there


def is_ready(record: dict) -> bool:
    ready = record.get("is_ready")
    if ready is None:  # an answer without the flag: trust the status
        return str(record.get("status") or "").lower() == "ready"
    return ready is True or str(ready).lower() == "true"


class DefinedReportsStream(SessionReportsListStream):
    """Report definitions (DefinedReportModel), the predefined ones included."""

    name = "defined_reports"
    default_path = "/api/v2/report/defined"
    model = "defined_report"
    id_fields = ("id", "user_id")
    datetime_fields = ("created_at", "modified_at")
    uses_start_date = False
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True, description="Defined report id (5 to 16: predefined)."),
        th.Property("title", th.StringType, description="Defined report title."),
        th.Property("type", th.StringType, description="Defined report type."),
        th.Property("query_filter", th.StringType, description="Query filter of the definition."),
        th.Property("query_order", th.StringType, description="Query order of the definition."),
        th.Property("user_id", th.StringType, description="User who created the definition."),
        th.Property("created_at", th.DateTimeType, description="Creation time."),
        th.Property("modified_at", th.DateTimeType, description="Last modification time."),
        th.Property("predefined", th.BooleanType, description="One of Fudo's predefined reports."),
        th.Property("has_subscription", th.BooleanType, description="Some user subscribes to it."),
        th.Property("subscribed", th.BooleanType, description="The API user subscribes to it."),
        EXTRA,
    ).to_dict()


class ReportSubscriptionsStream(SessionReportsListStream):
    """Subscriptions to periodic reports (DefinedReportSubscriptionModel)."""

    name = "report_subscriptions"
    default_path = "/api/v2/report/subscription"
    model = "defined_report_subscription"
    id_fields = ("id", "defined_report_id", "user_id", "created_by")
    datetime_fields = ("created_at", "modified_at")
    uses_start_date = False
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True, description="Subscription id."),
        th.Property("defined_report_id", th.StringType, description="The defined report subscribed to."),
        th.Property("user_id", th.StringType, description="The subscribing user."),
        th.Property("period", th.StringType, description="day, week, month, quarter or year."),
        th.Property("created_by", th.StringType, description="User who created the subscription."),
        th.Property("created_at", th.DateTimeType, description="Creation time."),
        th.Property("modified_at", th.DateTimeType, description="Last modification time."),
        th.Property("active", th.BooleanType, description="Whether the subscription is active."),
        EXTRA,
    ).to_dict()


# ----------------------------------------------------------------- report rows
_READ_ERRORS = (
    urllib3.exceptions.HTTPError,  # ProtocolError, IncompleteRead, ReadTimeoutError
    requests.exceptions.RequestException,
    ConnectionError,
    TimeoutError,
)


_RETRIED = (RetriableAPIError, *_READ_ERRORS)
#: CSV rows a download step hands out (a retried step reads its rows again)
CSV_STEP_ROWS = 20


class CsvDownload:
    """One report's CSV, read in steps that may each be retried: the first step
    (and the first after a break) requests it, and rows up to ``emitted``, the
    last one handed out, are skipped."""

    def __init__(self, stream: ReportRowsStream, context: Context, skip: int) -> None:
        self.stream = stream
        self.context = context
        self.url = stream.get_url(context)
        self.endpoint = f"GET {urlparse(self.url).path}"
        #: the number of the last row handed out
        self.emitted = skip
        self._response: requests.Response | None = None
        self._rows: t.Iterator[tuple[int, dict]] | None = None

    def next_rows(self) -> list[tuple[int, dict]]:
        """The next rows (at most ``CSV_STEP_ROWS``); none at the end."""
        if self._rows is None:
            stream = self.stream
            prepared = stream.build_prepared_request(method="GET", url=self.url, headers=stream.http_headers)
            self._response = stream.send_request(prepared, self.context)
            self._rows = enumerate(stream.csv_rows(self._response), start=1)
        rows = []
        try:
            for number, cells in self._rows:
                if number > self.emitted:
                    rows.append((number, cells))
                    if len(rows) == CSV_STEP_ROWS:
                        break
        except csv.Error as exc:
            msg = f"{self.endpoint}: the CSV cannot be read after row {self.emitted + len(rows)}: {exc}"
            raise FatalAPIError(msg) from None
        except BaseException:
            self.close()  # the next step requests the report again
            raise
        if rows:
            self.emitted = rows[-1][0]
        return rows

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._response = self._rows = None


class ReportRowsStream(SessionReportsStream):
    """The rows of each ready report's CSV, ``GET /api/v2/report/<id>/csv``.

    One record per CSV row: the report id, the report's modified_at (which
    version of the report the row comes from), the row number (1 = the first
    row after the header) and the row's cells under ``columns``, keyed by the
    CSV header (the columns differ per report type).

    The CSV is streamed (requests ``stream=True``, the csv module over the
    decoded body), so memory stays flat however large a report is; quoted
    commas, quotes and newlines inside cells are the csv module's business.

    State, one partition per report read (the SDK's context state):
    ``{"context": {"report_id", "report_modified_at"}, "rows": N, "complete": true}``.
    A complete partition is never downloaded again; an interrupted one is
    downloaded again and its first ``rows`` rows are skipped. Partitions of
    reports older than the reports bookmark are dropped as the sync goes: the
    reports stream can no longer hand those out, so the state stays the size
    of the reports sharing the latest modified_at, not of the whole history.
    """

    name = "report_rows"
    default_path = "/api/v2/report/{report_id}/csv"
    parent_stream_type = ReportsStream
    primary_keys = ("report_id", "row_number")
    replication_key = None
    schema = th.PropertiesList(
        th.Property("report_id", th.StringType, required=True, description="The report the row belongs to."),
        th.Property("report_modified_at", th.DateTimeType, description="modified_at of the report read."),
        th.Property("row_number", th.IntegerType, required=True, description="1 for the first row after the header."),
        th.Property(
            "columns",
            th.ObjectType(additional_properties=th.StringType),
            description="The row's cells keyed by the CSV header (columns differ per report type).",
        ),
    ).to_dict()

    @override
    @property
    def requests_session(self) -> requests.Session:
        session = super().requests_session
        session.stream = True  # bodies are read as they arrive, never whole
        return session

    @override
    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        assert context is not None
        state = self.get_context_state(context)
        if state.get("complete"):
            self.logger.info("Report %s was read before (%s rows); not downloading it again",
                             context["report_id"], state.get("rows"))
            return
        self._drop_finished_partitions(context)
        report_id = context["report_id"]
        modified_at = context.get("report_modified_at")
        done = int(state.get("rows") or 0)
        for number, cells in self._read_csv(context, skip=done):
            state["rows"] = number  # written in the STATE after this record
            yield {
                "report_id": report_id,
                "report_modified_at": modified_at,
                "row_number": number,
                "columns": cells,
            }
        state["complete"] = True

    # ------------------------------------------------------------ state size
    def _drop_finished_partitions(self, context: Context) -> None:
        partitions = self.stream_state.get("partitions")
        if not partitions:
            return
        watermark = self._reports_watermark()
        if watermark is None:
            return
        current = {k: context.get(k) for k in ("report_id", "report_modified_at")}
        reports = tap_of(self).streams.get(ReportsStream.name)
        # a re-checked report (older than the bookmark) may be resumed next sync
        pending = reports.not_ready() if isinstance(reports, ReportsStream) else {}

        def keep(partition: dict) -> bool:
            ctx = partition.get("context") or {}
            if ctx == current or ctx.get("report_id") in pending:
                return True
            try:
                modified = parse_datetime(ctx.get("report_modified_at"))
            except (TypeError, ValueError):
                return True
            return modified is None or modified >= watermark

        partitions[:] = [p for p in partitions if keep(p)]

    def _reports_watermark(self) -> t.Any:
        """The oldest modified_at the reports stream can still hand out."""
        reports = tap_of(self).streams.get(ReportsStream.name)
        candidates = []
        if isinstance(reports, ReportsStream):
            bookmark = reports.stream_state.get("replication_key_value")
            if bookmark and (mark := parse_datetime(bookmark)) is not None:
                candidates.append(mark)
            start = reports.starting_time(None)
            if start is not None:
                candidates.append(start)
        return max(candidates) if candidates else None

    # ------------------------------------------------------------ CSV
    def _read_csv(self, context: Context, skip: int) -> t.Iterator[tuple[int, dict]]:
        """(row number, cells) of the report's CSV, from row ``skip + 1``.

        The request and the reading of its body are one step, retried as
        singer-sdk retries a request (its backoff hooks: ``max_retries``
        attempts, the same waits), a body that breaks off mid-way (reset,
        truncated, timed out) included: each step hands out the next rows; a
        step after a break requests the report again and skips the rows already
        handed out, so a row is never lost nor yielded twice.
        """
        download = CsvDownload(self, context, skip)
        step = backoff.on_exception(
            self.backoff_wait_generator,
            _RETRIED,
            max_tries=self.backoff_max_tries,
            on_backoff=self.backoff_handler,
            jitter=self.backoff_jitter,
            logger=self.logger,
        )(download.next_rows)
        try:
            while rows := step():
                yield from rows
        except _READ_ERRORS as exc:
            msg = (f"{download.endpoint}: the CSV download broke off after row {download.emitted} "
                   f"{self.backoff_max_tries()} times ({type(exc).__name__}); giving up")
            raise FatalAPIError(msg) from None
        finally:
            download.close()

    def csv_rows(self, response: requests.Response) -> t.Iterator[dict]:
        ctype = response.headers.get("Content-Type", "").lower()
        if "html" in ctype or "json" in ctype:
            # An HTML page from a proxy, or a JSON error with status 200.
            endpoint = endpoint_of(response, self.path)
            if "html" in ctype:
                title = html_title(response.content[:20000].decode("utf-8", "replace"))
                msg = f"{endpoint} answered an HTML page ({title!r}) instead of the report's CSV"
            else:
                msg = f"{endpoint} answered JSON instead of the report's CSV: {error_text(response)}"
            raise FatalAPIError(msg)
        encoding = response.encoding if "charset=" in ctype else None
        if not encoding or encoding.lower().replace("-", "") == "utf8":
            encoding = "utf-8-sig"  # and drop a byte order mark if there is one
        raw = response.raw
        raw.decode_content = True
        raw.auto_close = False  # an ended body reads as EOF, not as a closed file
        text = io.TextIOWrapper(raw, encoding=encoding, errors="replace", newline="")
        reader = csv.reader(text)
        header = next(reader, None)
        if header is None:
            return
        keys = column_names(header)
        width = len(keys)
        for row in reader:
            if not row:
                continue  # a blank line is not a row
            if len(row) > width:
                keys = keys + [f"column_{i + 1}" for i in range(width, len(row))]
                width = len(keys)
            yield dict(zip(keys, row, strict=False))  # a short row: its last cells are missing


def column_names(header: list[str]) -> list[str]:
    """The header as unique keys: blanks become column_<n>, repeats get _2, _3."""
    names: list[str] = []
    seen: set[str] = set()
    for index, name in enumerate(header):
        name = name.strip() or f"column_{index + 1}"
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            candidate = f"{name}_{n}"
        seen.add(candidate)
        names.append(candidate)
    return names
