"""Each tap's ``streamrules.py``: the copies are identical, and the same tests
run against each tap's base stream, which takes its rules from its own copy.

- the batch rule: no BATCH for a full-table stream with ACTIVATE_VERSION, nor
  for a parent with a synced child; singer-sdk's batch config otherwise;
- the BATCH files: singer-sdk's JSONLinesBatcher files (names, URLs, one
  manifest a file, ``batch_size`` records a file, the same JSON), at the
  fastest gzip level, each line as the RECORD messages write it;
- the waits between attempts: Retry-After (seconds or an HTTP date), else the
  first wait doubled at each attempt, every wait capped, no jitter;
- the transport: TLS verification (``ca_bundle``, else ``verify_ssl``), the
  ``request_timeout`` and ``api_url`` without its trailing slash, which no base
  stream defines itself (``path`` stays per tap: the taps read ``paths``
  differently).
"""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import gzip
import importlib
import json
import re
import types
import typing as t
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from singer_sdk import RESTStream
from singer_sdk.contrib.msgspec import serialize_jsonl
from singer_sdk.exceptions import RetriableAPIError
from singer_sdk.singerlib.json import serialize_json

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc


class TapCase(t.NamedTuple):
    tap: str  # the tap's name, as in its BATCH file names
    package: str
    tap_class: str
    base_stream: str  # the stream class every stream of the tap derives from
    config: dict
    max_wait: float  # the cap on a single wait


CASES = [
    TapCase("tap-activtrak", "tap_activtrak", "TapActivTrak", "ActivTrakStream", {"api_token": "token-1"}, 600.0),
    TapCase("tap-beyondtrust", "tap_beyondtrust", "TapBeyondTrust", "BeyondTrustStream",
            {"api_url": "https://support.example.com", "client_id": "client", "client_secret": "secret-1"}, 600.0),
    TapCase("tap-controlio", "tap_controlio", "TapControlio", "ControlioStream", {"api_token": "token-1"}, 600.0),
    TapCase("tap-ekran", "tap_ekran", "TapEkran", "EkranStream",
            {"api_url": "https://ekran.example.com", "api_token": "token-1"}, 600.0),
    TapCase("tap-sessionreports", "tap_sessionreports", "TapSessionReports", "SessionReportsStream",
            {"api_url": "https://fudo.example.com", "api_token": "token-1"}, 300.0),
]
by_tap = pytest.mark.parametrize("case", CASES, ids=[case.tap for case in CASES])

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "updated_at": {"type": "string", "format": "date-time"},
        "name": {"type": ["string", "null"]},
        "amount": {"type": ["number", "null"]},
        "extra": {"type": "object"},
    },
}


def rows(count: int) -> list[dict]:
    """Records as a stream hands them out: nested objects, None, non-ASCII text, a Decimal."""
    return [{"id": i, "updated_at": f"2026-01-01T00:{i // 60:02d}:{i % 60:02d}+00:00",
             "name": None if i % 7 == 0 else f"Zoë «{i}»", "amount": decimal.Decimal(f"{i}.10"),
             "extra": {"tags": ["a", i], "none": None}} for i in range(1, count + 1)]


def probe(case: TapCase, records: list[dict] | None = None, *, full_table: bool = False,
          **config: t.Any) -> t.Any:
    """A stream of the tap derived from its base stream, whose records are ``records``."""
    package = importlib.import_module(f"{case.package}.client")
    base = getattr(package, case.base_stream)

    class Probe(base):  # type: ignore[misc, valid-type]
        name = "probe"
        path = "/probe"
        schema = SCHEMA
        primary_keys = ("id",)
        replication_key = None if full_table else "updated_at"

        def get_records(self, context: t.Any) -> t.Iterable[dict]:
            yield from records or []

        def post_process(self, row: dict, context: t.Any = None) -> dict | None:
            return row

    tap_module = importlib.import_module(f"{case.package}.tap")
    tap = getattr(tap_module, case.tap_class)(config={**case.config, **config}, parse_env_config=False)
    if tap.mapper is not None:  # the tap's stream maps are set up: the probe's too
        tap.mapper.register_raw_stream_schema("probe", SCHEMA, ["id"])
    return Probe(tap=tap)


def batch_config(root: Path, *, compression: str | None = "gzip", batch_size: int = 10,
                 prefix: str | None = "probe-") -> dict:
    storage: dict[str, t.Any] = {"root": root.as_uri()}
    if prefix is not None:
        storage["prefix"] = prefix
    return {"encoding": {"format": "jsonl", "compression": compression}, "storage": storage, "batch_size": batch_size}


def failure(retry_after: str | None = None, status: int = 429) -> RetriableAPIError:
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return RetriableAPIError("failed", response)


def waits(stream: t.Any, exceptions: list[BaseException]) -> list[float]:
    generator = stream.backoff_wait_generator()
    generator.send(None)  # as the backoff decorator starts a wait generator
    return [generator.send(exception) for exception in exceptions]


def http_date(seconds_from_now: float) -> str:
    return email.utils.format_datetime(dt.datetime.now(UTC) + dt.timedelta(seconds=seconds_from_now), usegmt=True)


# ------------------------------------------------------------------ the copies
def test_every_tap_has_the_same_streamrules_module():
    copies = {case.package: (ROOT / case.tap / case.package / "streamrules.py").read_bytes() for case in CASES}
    assert len(copies) == 5
    assert len(set(copies.values())) == 1, "the streamrules.py copies differ"


@by_tap
def test_the_base_stream_takes_its_rules_from_its_own_copy(case):
    rules = importlib.import_module(f"{case.package}.streamrules")
    base = getattr(importlib.import_module(f"{case.package}.client"), case.base_stream)
    assert Path(rules.__file__) == ROOT / case.tap / case.package / "streamrules.py"
    assert issubclass(base, rules.StreamRules)
    assert base.__mro__.index(rules.StreamRules) < base.__mro__.index(RESTStream)
    own = {"get_batch_config", "get_batches", "backoff_wait_generator", "backoff_jitter", "backoff_max_tries",
           "retry_wait"}
    assert own & set(vars(base)) == set(), "the base stream keeps a copy of a rule"
    assert case.max_wait == base.MAX_WAIT_SECONDS


# ------------------------------------------------------------------ the transport
TRANSPORT = ("url_base", "requests_session", "timeout")


@by_tap
def test_the_base_stream_takes_its_transport_from_its_own_copy(case):
    rules = importlib.import_module(f"{case.package}.streamrules")
    base = getattr(importlib.import_module(f"{case.package}.client"), case.base_stream)
    assert set(TRANSPORT) & set(vars(base)) == set(), "the base stream keeps its own transport"
    for name in TRANSPORT:  # the first class of the MRO that defines it
        assert next(cls for cls in base.__mro__ if name in vars(cls)) is rules.StreamRules, name
    # the documented exception: every tap keeps its own path (its comment says why)
    assert "path" in vars(base) and "path" not in vars(rules.StreamRules)


@by_tap
def test_tls_is_verified_against_the_ca_bundle_when_it_is_set(case, tmp_path):
    bundle = tmp_path / "private-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
    for verify_ssl in (True, False):
        stream = probe(case, ca_bundle=str(bundle), verify_ssl=verify_ssl)
        assert stream.requests_session.verify == str(bundle)
        assert stream.requests_session is stream.requests_session  # singer-sdk's one session


@by_tap
@pytest.mark.parametrize("verify_ssl", [True, False])
def test_without_a_ca_bundle_tls_is_verified_as_verify_ssl_says(case, verify_ssl):
    assert probe(case, verify_ssl=verify_ssl).requests_session.verify is verify_ssl


@by_tap
def test_tls_is_verified_by_default(case):
    assert probe(case).requests_session.verify is True


@by_tap
def test_the_timeout_is_request_timeout_as_a_float(case):
    assert probe(case, request_timeout=12.5).timeout == 12.5
    timeout = probe(case, request_timeout=30).timeout
    assert timeout == 30.0 and type(timeout) is float
    assert probe(case).timeout == 300.0  # the settings' default


@by_tap
def test_url_base_is_api_url_without_its_trailing_slash(case):
    assert probe(case, api_url="https://host.example.com/").url_base == "https://host.example.com"
    assert probe(case, api_url="https://host.example.com").url_base == "https://host.example.com"
    stream = probe(case, api_url="https://host.example.com/api/")
    assert stream.url_base == "https://host.example.com/api"
    assert stream.get_url(None) == "https://host.example.com/api/probe"  # the probe's path is /probe


# ------------------------------------------------------------------ the batch rule
@by_tap
def test_a_full_table_stream_with_activate_version_keeps_record_messages(case, tmp_path):
    raw = batch_config(tmp_path)
    expected = {"encoding": {"format": "jsonl", "compression": "gzip"},
                "storage": {"root": tmp_path.as_uri(), "prefix": "probe-", "params": {}}, "batch_size": 10}
    full = probe(case, full_table=True, batch_config=raw, emit_activate_version_messages=True)
    assert full.replication_method == "FULL_TABLE"
    assert full.get_batch_config(full.config) is None
    without_activate = probe(case, full_table=True, batch_config=raw, emit_activate_version_messages=False)
    assert without_activate.get_batch_config(without_activate.config).asdict() == expected
    incremental = probe(case, batch_config=raw, emit_activate_version_messages=True)
    assert incremental.replication_method == "INCREMENTAL"
    assert incremental.get_batch_config(incremental.config).asdict() == expected
    assert probe(case).get_batch_config(probe(case).config) is None  # no batch_config: RECORD messages


@by_tap
def test_a_parent_with_a_synced_child_keeps_record_messages(case, tmp_path):
    stream = probe(case, batch_config=batch_config(tmp_path))
    child = types.SimpleNamespace(selected=False, has_selected_descendents=False)
    stream.child_streams = [child]
    assert stream.get_batch_config(stream.config).batch_size == 10  # a child not synced: BATCH
    child.selected = True
    assert stream.get_batch_config(stream.config) is None
    child.selected, child.has_selected_descendents = False, True  # a grandchild synced
    assert stream.get_batch_config(stream.config) is None


# ------------------------------------------------------------------ the BATCH files
def read_lines(path: Path) -> bytes:
    with gzip.open(path, "rb") as lines:
        return lines.read()


def expected_lines(records: list[dict]) -> bytes:
    """The records as the taps' RECORD messages write them (singer-sdk's MsgSpecWriter)."""
    return b"".join(bytes(serialize_jsonl(record)) for record in records)


def sdk_objects(records: list[dict]) -> list:
    """The records as singer-sdk's own batcher writes them (simplejson), read back."""
    return [json.loads(serialize_json(record)) for record in records]


@by_tap
def test_batch_files_are_singer_sdks_jsonl_files_at_the_fastest_gzip_level(case, tmp_path):
    records = rows(25)
    stream = probe(case, records, batch_config=batch_config(tmp_path, batch_size=10))
    config = stream.get_batch_config(stream.config)
    batches = list(stream.get_batches(config, None))
    assert [encoding for encoding, _ in batches] == [config.encoding] * 3
    assert [len(manifest) for _, manifest in batches] == [1, 1, 1]
    paths = [Path(urlparse(manifest[0]).path) for _, manifest in batches]
    names = [re.fullmatch(rf"probe-{case.tap}--probe-([0-9a-f-]{{36}})-([0-9]+)\.json\.gz", p.name) for p in paths]
    assert all(names), [p.name for p in paths]
    assert len({name.group(1) for name in names}) == 1  # one sync id for the files of one sync
    assert [name.group(2) for name in names] == ["1", "2", "3"]
    assert [manifest[0] for _, manifest in batches] == [config.storage.get_url(p.name) for p in paths]
    assert sorted(tmp_path.iterdir()) == sorted(paths) and all(p.parent == tmp_path for p in paths)
    contents = [read_lines(p) for p in paths]
    assert [content.count(b"\n") for content in contents] == [10, 10, 5]
    assert contents == [expected_lines(records[:10]), expected_lines(records[10:20]), expected_lines(records[20:])]
    # the JSON singer-sdk's batcher writes, non-ASCII characters in UTF-8 rather than escaped
    assert [json.loads(line) for content in contents for line in content.splitlines()] == sdk_objects(records)
    assert "Zoë «25»".encode() in contents[2] and b"\\u" not in b"".join(contents)
    assert json.loads(contents[2].splitlines()[-1]) == {
        "id": 25, "updated_at": "2026-01-01T00:00:25+00:00", "name": "Zoë «25»", "amount": 25.1,
        "extra": {"tags": ["a", 25], "none": None}}
    for path in paths:
        header = path.read_bytes()[:10]
        assert header[:3] == b"\x1f\x8b\x08"  # gzip, deflate
        assert header[8] == 4  # XFL 4: compressed at the fastest level (level 9 writes 2)
    # the records went through singer-sdk's sync: the bookmark is the last record's
    assert stream.get_context_state(None)["replication_key_value"] == "2026-01-01T00:00:25+00:00"


@by_tap
def test_a_batch_size_that_divides_the_records_leaves_no_empty_file(case, tmp_path):
    stream = probe(case, rows(20), batch_config=batch_config(tmp_path, batch_size=5, prefix=None))
    batches = list(stream.get_batches(stream.get_batch_config(stream.config), None))
    paths = [Path(urlparse(manifest[0]).path) for _, manifest in batches]
    assert [read_lines(p).count(b"\n") for p in paths] == [5, 5, 5, 5]
    assert all(p.name.startswith(f"{case.tap}--probe-") for p in paths)
    assert list(probe(case, [], batch_config=batch_config(tmp_path / "none")).get_batches(
        stream.get_batch_config(stream.config), None)) == []


@by_tap
def test_records_go_to_the_file_as_they_come_not_a_file_at_a_time(case, tmp_path, monkeypatch):
    """A BATCH file's records are not held all at once (singer-sdk's batcher
    lists a whole file's): at most ``LINES_PER_WRITE`` are read ahead of the
    compressor, whatever the ``batch_size``."""
    rules = importlib.import_module(f"{case.package}.streamrules")
    per_write, encoder = rules.LINES_PER_WRITE, rules._LINES
    produced = 0
    ahead: list[int] = []  # records read but not yet encoded, at each write

    def records() -> t.Iterator[dict]:
        nonlocal produced
        for record in rows(5 * per_write + 7):
            produced += 1
            yield record

    class Counting:
        written = 0

        def encode_lines(self, lines: t.Iterable[dict]) -> bytes:
            batch = list(lines)
            ahead.append(produced - self.written)
            self.written += len(batch)
            return encoder.encode_lines(batch)

    stream = probe(case, batch_config=batch_config(tmp_path, batch_size=3 * per_write))
    stream.get_records = lambda context: records()
    monkeypatch.setattr(rules, "_LINES", Counting())
    batches = list(stream.get_batches(stream.get_batch_config(stream.config), None))
    assert [read_lines(Path(urlparse(url).path)).count(b"\n") for _, (url,) in batches] == \
        [3 * per_write, 2 * per_write + 7]
    assert max(ahead) == per_write and sum(1 for n in ahead if n < per_write) == 1  # the file's and the sync's last


@by_tap
def test_another_encoding_is_singer_sdks_own(case, tmp_path):
    records = rows(12)
    ours = probe(case, records, batch_config=batch_config(tmp_path / "gzip", batch_size=12))
    sdk = probe(case, records, batch_config=batch_config(tmp_path / "none", compression="none", batch_size=12))
    ((_, (our_url,)),) = ours.get_batches(ours.get_batch_config(ours.config), None)
    ((encoding, (sdk_url,)),) = sdk.get_batches(sdk.get_batch_config(sdk.config), None)
    assert encoding.compression == "none"
    our_file, sdk_file = Path(urlparse(our_url).path), Path(urlparse(sdk_url).path)
    assert sdk_file.read_bytes()[8] == 2  # singer-sdk's JSONLinesBatcher: level 9
    assert our_file.read_bytes()[8] == 4
    assert read_lines(our_file) == expected_lines(records)
    # the same records as singer-sdk's file
    assert [json.loads(line) for line in read_lines(sdk_file).splitlines()] == sdk_objects(records)
    assert [json.loads(line) for line in read_lines(our_file).splitlines()] == sdk_objects(records)


@by_tap
def test_a_batch_sync_sends_one_batch_message_a_file_then_the_state(case, tmp_path, capsys):
    stream = probe(case, rows(7), batch_config=batch_config(tmp_path, batch_size=3))
    capsys.readouterr()
    stream.sync()
    messages = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["type"] for m in messages if m["type"] != "SCHEMA"][:6] == ["BATCH", "STATE"] * 3
    sent = [m for m in messages if m["type"] == "BATCH"]
    assert [m["encoding"] for m in sent] == [{"format": "jsonl", "compression": "gzip"}] * 3
    files = [Path(urlparse(url).path) for m in sent for url in m["manifest"]]
    assert [read_lines(f).count(b"\n") for f in files] == [3, 3, 1]
    assert {f.read_bytes()[8] for f in files} == {4}
    assert not [m for m in messages if m["type"] == "RECORD"]


# ------------------------------------------------------------------ the waits
@by_tap
def test_waits_double_from_the_first_wait_to_the_cap(case):
    stream = probe(case, retry_backoff_seconds=1.5, max_retries=4)
    expected = {600.0: [1.5, 3.0, 6.0, 12.0, 24.0, 48.0, 96.0, 192.0, 384.0, 600.0, 600.0],
                300.0: [1.5, 3.0, 6.0, 12.0, 24.0, 48.0, 96.0, 192.0, 300.0, 300.0, 300.0]}[case.max_wait]
    assert waits(stream, [failure() for _ in range(11)]) == expected
    dropped = requests.exceptions.ConnectionError("reset")  # no answer at all: the doubling
    assert waits(stream, [dropped, failure(status=503), dropped]) == [1.5, 3.0, 6.0]  # a new count per request
    assert waits(probe(case, retry_backoff_seconds=0), [failure(), failure()]) == [0.0, 0.0]
    assert stream.retry_wait(None, 200) == case.max_wait  # no overflow, however many attempts
    assert stream.backoff_jitter(3.3) == 3.3
    assert stream.backoff_max_tries() == 4


@by_tap
def test_retry_after_seconds_win_and_count_as_attempts(case):
    stream = probe(case, retry_backoff_seconds=1.5)
    assert waits(stream, [failure(), failure("7"), failure(), requests.exceptions.ConnectionError(),
                          failure("0.25"), failure("0")]) == [1.5, 7.0, 6.0, 12.0, 0.25, 0.0]
    assert waits(stream, [failure("-5"), failure("soon"), failure("inf"), failure("nan"), failure("")]) == [
        0.0, 3.0, 6.0, 12.0, 24.0]  # below 0: none; unreadable: the doubling


@by_tap
def test_retry_after_http_dates(case):
    stream = probe(case, retry_backoff_seconds=1.5)
    in_two_minutes, waited = waits(stream, [failure(http_date(120)), failure("Thu, 01 Jan 1970 00:00:00 GMT")])
    assert 115.0 <= in_two_minutes <= 120.0
    assert waited == 0.0  # a date gone by: no wait
    numeric_zone = (dt.datetime.now(UTC) + dt.timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S +0000")
    assert 55.0 <= stream.retry_wait(failure(numeric_zone), 0) <= 60.0


@by_tap
def test_the_cap_applies_to_retry_after(case):
    stream = probe(case, retry_backoff_seconds=1.5)
    assert waits(stream, [failure("100000"), failure(http_date(7200)), failure(str(case.max_wait + 1))]) == [
        case.max_wait] * 3
    assert stream.retry_wait(failure(str(case.max_wait - 1)), 0) == case.max_wait - 1


@by_tap
def test_singer_sdks_decorator_waits_those_waits(case, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    stream = probe(case, retry_backoff_seconds=1.5, max_retries=4)
    answers = iter([failure(), failure("7"), failure(), "answer"])
    calls = []

    def request() -> str:
        calls.append(1)
        answer = next(answers)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    stream.logger.disabled = True
    assert stream.request_decorator(request)() == "answer"
    assert slept == [1.5, 7.0, 6.0] and len(calls) == 4
    slept.clear()
    with pytest.raises(RetriableAPIError):
        stream.request_decorator(lambda: (_ for _ in ()).throw(failure()))()
    assert slept == [1.5, 3.0, 6.0]  # 4 attempts in all: max_retries


@by_tap
def test_the_retry_after_parser(case):
    parse = importlib.import_module(f"{case.package}.streamrules").retry_after_seconds
    assert [parse(v) for v in (None, "", "12", " 3 ", "1.5", "-2", "soon", "inf", "nan", "1e3")] == [
        None, None, 12.0, 3.0, 1.5, 0.0, None, None, None, 1000.0]
    assert parse("Thu, 01 Jan 1970 00:00:00 GMT") == 0.0
    assert 295.0 <= t.cast("float", parse(http_date(300))) <= 300.0
    # HTTP's two obsolete date forms (RFC 9110, 5.6.7), which a recipient must read too
    later = dt.datetime.now(UTC) + dt.timedelta(seconds=300)
    rfc850, asctime = later.strftime("%A, %d-%b-%y %H:%M:%S GMT"), later.strftime("%a %b %d %H:%M:%S %Y")
    assert 295.0 <= t.cast("float", parse(rfc850)) <= 300.0
    assert 295.0 <= t.cast("float", parse(asctime)) <= 300.0
