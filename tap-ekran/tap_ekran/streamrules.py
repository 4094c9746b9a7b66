"""The rules the tap's REST streams share: when a stream sends BATCH
messages, how their files are written, how long a stream waits before
trying a failed request again, and the transport settings every tap reads
alike (``api_url``, ``request_timeout``, ``verify_ssl`` and ``ca_bundle``).

Every tap of this repository carries an identical copy of this module (each
tap stands alone); tests/test_streamrules.py fails when the copies differ and
runs the same tests against each copy. It uses singer-sdk's public hooks; its
one private step (the records of a BATCH sync) is ``_sdk.batch_records``.
"""

from __future__ import annotations

import datetime as dt
import gzip
import itertools
import math
import typing as t
import uuid
from email.utils import parsedate_to_datetime

import msgspec.json
from singer_sdk.batch import lazy_chunked_generator
from singer_sdk.contrib.msgspec import enc_hook
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE
from typing_extensions import override

from ._sdk import batch_records

if t.TYPE_CHECKING:
    import requests
    from singer_sdk import RESTStream
    from singer_sdk.helpers.types import Context
    from singer_sdk.streams.core import BatchConfig

    _RESTStream = RESTStream[t.Any]
else:
    _RESTStream = object

__all__ = ["StreamRules", "request_timeout", "retry_after_seconds", "tls_verify"]

UTC = dt.timezone.utc
#: lines handed to the compressor at once, and so the records a BATCH sync holds: a write per
#: line, as singer-sdk's batcher does, cost 0.46 CPU-s more per 100,000 ActivTrak activity-log
#: records (2.46 s against 2.00 s); 1,000 held 19 MB more than 100 for 40,000 BeyondTrust sessions
#: (82 MB against 63 MB peak), at the same CPU
LINES_PER_WRITE = 100
#: the BATCH lines' JSON: the encoder of the taps' RECORD messages (singer-sdk's MsgSpecWriter), so a
#: record is written the same in both; singer-sdk's batcher writes the same JSON with simplejson, which
#: escapes non-ASCII characters and costs about 10 times the CPU (0.57 s against 0.06 s for 20,000
#: BeyondTrust sessions, 39 MB)
_LINES = msgspec.json.Encoder(enc_hook=enc_hook, decimal_format="number")


def tls_verify(config: t.Mapping[str, t.Any]) -> bool | str:
    """requests' ``verify``: the ``ca_bundle`` file when that setting is set, else
    the ``verify_ssl`` setting (false: no verification)."""
    return config.get("ca_bundle") or bool(config["verify_ssl"])


def request_timeout(config: t.Mapping[str, t.Any]) -> float:
    """Seconds a request may take: the ``request_timeout`` setting (a number, fractions kept)."""
    return float(config["request_timeout"])


def retry_after_seconds(value: str | None) -> float | None:
    """The wait a ``Retry-After`` header asks for, in seconds (never below 0):
    a number of seconds or an HTTP date. None for no header, or one that is
    neither (``soon``, ``inf``, ``nan``)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, no zone known
        when = when.replace(tzinfo=UTC)
    return max((when - dt.datetime.now(UTC)).total_seconds(), 0.0)


class StreamRules(_RESTStream):
    """RESTStream mixin, first in a stream class's bases, before ``RESTStream``:

    - BATCH messages only where they are safe (``get_batch_config``);
    - the BATCH files singer-sdk writes for ``jsonl`` with ``gzip``, at the
      fastest gzip level, each line written as the RECORD messages write it
      (``get_batches``);
    - the waits between attempts: what ``Retry-After`` asks, else a first wait
      doubled at each attempt, none longer than ``MAX_WAIT_SECONDS``, no jitter
      (``retry_wait``);
    - the transport: ``url_base`` (``api_url``), ``requests_session`` (TLS
      verification: ``ca_bundle``, ``verify_ssl``), ``timeout``
      (``request_timeout``).
    """

    #: the longest single wait between two attempts, in seconds, Retry-After's included
    MAX_WAIT_SECONDS: t.ClassVar[float] = 600.0
    #: gzip level of the BATCH files: 1. singer-sdk writes 9, which costs 5-6x the CPU on these
    #: records (1.06 s against 0.18 s per 100,000 ActivTrak activity-log records, 1.86 s against 0.27 s
    #: per 100,000 Ekran sessions) for files 1.4-2x smaller, read once by the loader
    BATCH_GZIP_LEVEL: t.ClassVar[int] = 1

    # ---------------------------------------------------------------- BATCH
    @override
    def get_batch_config(self, config: t.Mapping) -> BatchConfig | None:
        """singer-sdk's batch config, except for two kinds of stream that keep RECORD messages.

        A full-table stream that sends ACTIVATE_VERSION: the BATCH rows of
        singer-sdk 0.54 loaders carry no ``_sdc_*`` metadata, so the next
        ACTIVATE_VERSION would mark them deleted.

        A parent whose children are synced: singer-sdk moves the parent's bookmark
        with each record, before the parent's file is out, and a child's STATE
        message (sent after the child's file) carries it: a run killed in between
        would skip parent records."""
        if self.replication_method == REPLICATION_FULL_TABLE and self.emit_activate_version_messages:
            return None
        if any(child.selected or child.has_selected_descendents for child in self.child_streams):
            return None
        return super().get_batch_config(config)

    @override
    def get_batches(self, batch_config: BatchConfig,
                    context: Context | None = None) -> t.Iterable[tuple[t.Any, list[str]]]:
        """singer-sdk's JSONLinesBatcher files, at gzip level ``BATCH_GZIP_LEVEL``.

        For the ``jsonl`` format with ``gzip`` compression: files named
        ``{prefix}{tap}--{stream}-{uuid}-{n}.json.gz`` in the storage root, each
        of ``batch_size`` records (the last one of the rest), one JSON object a
        line as the tap's RECORD messages write it (``_LINES``: the same JSON as
        singer-sdk's), one manifest (its URL) per file. Any other encoding is
        singer-sdk's own.

        The records go to the file as they are read, ``LINES_PER_WRITE`` at a
        time: singer-sdk's batcher lists a whole file's records first, which
        for 40,000 BeyondTrust sessions in files of 3,000 held 123 MB instead
        of 63 MB and cost 10-15% more CPU (its garbage collector walking the
        listed records)."""
        encoding = batch_config.encoding
        if encoding.format != "jsonl" or encoding.compression != "gzip":
            yield from super().get_batches(batch_config, context)
            return
        storage = batch_config.storage
        sync_id = f"{self.tap_name}--{self.name}-{uuid.uuid4()}"
        prefix = storage.prefix or ""
        records = iter(batch_records(self, context))
        for number, first in enumerate(records, start=1):
            filename = f"{prefix}{sync_id}-{number}.json.gz"
            chunk = itertools.chain((first,), itertools.islice(records, batch_config.batch_size - 1))
            with (storage.open(filename, "wb") as file,
                  gzip.GzipFile(fileobj=file, mode="wb", compresslevel=self.BATCH_GZIP_LEVEL) as lines):
                for lines_at_once in lazy_chunked_generator(chunk, LINES_PER_WRITE):
                    lines.write(_LINES.encode_lines(lines_at_once))
            yield encoding, [storage.get_url(filename)]

    # ---------------------------------------------------------------- retries
    # singer-sdk's validate_response classifies the answers (429 and 5xx are
    # retried, every other 4xx fails at once); these hooks say how often and how
    # long the backoff decorator waits.
    def first_retry_wait(self) -> float:
        """Seconds before the first retry, doubled before each next one: the
        ``retry_backoff_seconds`` setting."""
        return float(self.config["retry_backoff_seconds"])

    def retry_wait(self, exception: BaseException | None, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt + 1`` (``attempt`` 0:
        the first): the answer's Retry-After when it has a readable one, else
        ``first_retry_wait() * 2**attempt``; at most ``MAX_WAIT_SECONDS``."""
        response = getattr(exception, "response", None)
        headers = getattr(response, "headers", None)
        wait = retry_after_seconds(headers.get("Retry-After")) if headers is not None else None
        if wait is None:
            wait = self.first_retry_wait() * 2.0 ** min(attempt, 64)
        return min(max(wait, 0.0), self.MAX_WAIT_SECONDS)

    @override
    def backoff_wait_generator(self) -> t.Generator[float, None, None]:
        """``retry_wait`` of each failure; every attempt counts, Retry-After's too."""
        attempts = itertools.count()
        return self.backoff_runtime(value=lambda exception: self.retry_wait(exception, next(attempts)))

    @override
    def backoff_jitter(self, value: float) -> float:
        return value  # Retry-After is the server's wish, the doubling the configured one: wait exactly that

    @override
    def backoff_max_tries(self) -> int:
        """Attempts in all, the first included: the ``max_retries`` setting."""
        return int(self.config["max_retries"])

    # ---------------------------------------------------------------- transport
    @property
    @override
    def url_base(self) -> str:
        """The ``api_url`` setting without its trailing slashes (the streams' paths start with one)."""
        return str(self.config["api_url"]).rstrip("/")

    @property
    @override
    def requests_session(self) -> requests.Session:
        """singer-sdk's session, verifying TLS certificates against the ``ca_bundle``
        file when that setting is set, else as the ``verify_ssl`` setting says
        (false: not at all)."""
        session = super().requests_session
        session.verify = tls_verify(self.config)
        return session

    @property
    @override
    def timeout(self) -> float:  # type: ignore[override]  # singer-sdk says int; requests takes a float
        """Seconds a request may take: the ``request_timeout`` setting (a number, fractions kept)."""
        return request_timeout(self.config)
