"""What event archives and state archives share: the listing, the download and
its resumption, the archive_key bookmark, the days a sync covers, and the
streams their rows are handed to.

Both kinds are listed per UTC date by ArchiveListing and downloaded with
``generate_report=Archive&type=<event|state>&date=..&index=..``: a gzip file
(or an ``<error>`` answer), decompressed as it arrives. A download goes
through the tap's one request path (``read_answer``): a body that breaks off
is asked again and the units already handed over (lines, rows) are read past,
so each is handed over once; an archive is immutable once listed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import time
import typing as t
from dataclasses import dataclass

from singer_sdk import typing as th
from typing_extensions import override

from tap_beyondtrust import xmlrows as xr
from tap_beyondtrust.client import BODY_ERRORS, BeyondTrustAPIError, BeyondTrustStream, _xml_error_text, fetch_rows
from tap_beyondtrust.feeds import FedStream
from tap_beyondtrust.windows import first_instant, last_day

#: kinds of unexpected shapes warned about, at most, per sync
MAX_SHAPE_WARNINGS = 20
#: the properties that name an archive in the record of an archive read
ARCHIVE_ID = (
    th.Property("archive_key", th.StringType, required=True, description="<date>/<index, 5 digits>: the bookmark."),
    th.Property("archive_date", th.StringType, required=True),
    th.Property("archive_index", th.IntegerType, required=True),
)
LISTING_EXTRA = th.Property("extra", th.ObjectType(additional_properties=True),
                            description="Elements of the archive's ArchiveListing entry the document does not name.")


@dataclass(frozen=True)
class ArchiveFile:
    """One archive to download: ``kind`` event or state, its date and index."""

    kind: str
    date: str
    index: int


def archive_params(archive: ArchiveFile) -> dict[str, t.Any]:
    return {"generate_report": "Archive", "type": archive.kind, "date": archive.date, "index": archive.index}


def archive_key(archive: t.Mapping[str, t.Any]) -> str:
    """``<date>/<index, 5 digits>`` of a listing row: the bookmark, ordered as the archives are."""
    return f"{archive['date']}/{archive['index']:05d}"


class ArchiveStream(BeyondTrustStream):
    """A stream of archives: one record per archive read, whose units go to the fed (child) streams."""

    report = "Archive"
    primary_keys = ("archive_date", "archive_index")
    is_sorted = True
    #: event or state
    kind: t.ClassVar[str] = ""
    #: how the warning about an unexpected shape ends
    shape_note: t.ClassVar[str] = ""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        #: the sync's start: the days it reads end with it (or with end_date)
        self.started_at = int(time.time())
        self.targets: dict[str, FedStream] = {}
        self.shape_warnings: set[str] = set()

    @override
    def generate_child_contexts(self, record: dict, context: t.Any) -> t.Iterable[dict]:
        return iter(())  # children are fed from the download, never synced per archive

    def open_targets(self, version: int | None = None) -> None:
        """The selected child streams, each sent its SCHEMA message."""
        self.targets = {s.name: s for s in self.child_streams if s.selected and isinstance(s, FedStream)}
        for child in self.targets.values():
            child.open_feed(version)

    # ------------------------------------------------------------ which archives
    def listing(self, context: t.Any, date: str) -> list[dict]:
        """The archives of this kind ArchiveListing names for ``date``, by index."""
        archives = fetch_rows(self, context, {"generate_report": "ArchiveListing", "date": date},
                              (f"{self.kind}_archive",), "archives", lambda el: xr.archive_listing_record(el, date))
        return sorted(archives, key=lambda a: a["index"] or 0)

    def bookmark(self, context: t.Any) -> str:
        """The archive_key of the last archive read whole ("" before the first)."""
        value = self.get_starting_replication_key_value(context)
        return str(value) if value and "/" in str(value) else ""  # no state yet: the SDK hands back start_date

    def first_day(self) -> dt.date:
        return first_instant(self.config, self.started_at).date()

    def last_day(self) -> dt.date:
        """The last UTC date this sync reads: the last that starts before its end."""
        return last_day(self.config, self.started_at)

    def today(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.started_at, dt.timezone.utc).date()

    # ------------------------------------------------------------ one archive
    def download(self, context: t.Any, archive: ArchiveFile) -> t.Iterator[t.Any]:
        """The units of one archive (``units``), each once, as they are decompressed."""
        return self.read_report(context, archive)

    @override
    def report_params(self, context: t.Any, window: t.Any) -> dict:
        return archive_params(window)

    @override
    def rows(self, response: t.Any, context: t.Any, window: t.Any) -> t.Iterator[t.Any]:
        try:
            yield from self.units(archive_source(response, window), window)
        except OSError as exc:  # gzip.BadGzipFile; a dropped connection is asked again
            if isinstance(exc, BODY_ERRORS):
                raise
            raise BeyondTrustAPIError(f"BeyondTrust {describe(window)} is not a valid gzip file ({exc})") from None

    @override
    def record_key(self, record: t.Any) -> str:
        """Units read again after a break are not checked: an archive is immutable once listed."""
        return ""

    def units(self, source: t.Any, archive: ArchiveFile) -> t.Iterator[t.Any]:
        """What the archive's decompressed bytes hold, one unit at a time."""
        raise NotImplementedError

    def warn_shape(self, what: str) -> None:
        """One warning per kind of unexpected shape (at most MAX_SHAPE_WARNINGS kinds)."""
        if what in self.shape_warnings or len(self.shape_warnings) >= MAX_SHAPE_WARNINGS:
            return
        self.shape_warnings.add(what)
        self.logger.warning("%s archives hold %s, which the document does not describe: %s",
                            self.kind.capitalize(), what, self.shape_note)


def describe(archive: ArchiveFile) -> str:
    return f"Archive {archive.date}/{archive.index}" if archive.kind == "event" \
        else f"{archive.kind} Archive {archive.date}/{archive.index}"


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


def archive_source(response: t.Any, archive: ArchiveFile) -> t.Any:
    """The archive's decompressed bytes as a read() source, decompressed as they arrive; an
    XML answer (an ``<error>``) fails with the appliance's message."""
    raw = response.raw
    raw.decode_content = True
    head = raw.read(2)
    if head == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=t.cast("t.Any", _Prepend(head, raw)), mode="rb")
    if head.lstrip()[:1] == b"<":
        body = head + raw.read(65536)
        message = _xml_error_text(body) or body[:300].decode("utf-8", "replace")
        raise BeyondTrustAPIError(f"BeyondTrust {describe(archive)} failed: {message}")
    return _Prepend(head, raw)  # already decompressed on the way (Content-Encoding)


def source_lines(source: t.Any) -> t.Iterator[bytes]:
    """The lines of a source, read in 64 KiB blocks (a GzipFile iterates its lines itself)."""
    if not isinstance(source, _Prepend):
        yield from source
        return
    rest = b""
    while True:
        chunk = source.read(1 << 16)
        if not chunk:
            break
        rest += chunk
        *lines, rest = rest.split(b"\n")
        yield from lines
    if rest:
        yield rest
