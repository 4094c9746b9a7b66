"""From state and config to the requests the list streams send, without a server.

The list streams page by ``modified_at`` (keyset paging over limit/offset):
the paginator's token is ``(since, offset, group)``; ``get_url_params`` turns
a token and the config into the query. These tests build the stream from a
config and a state, take the paginator singer-sdk would take, feed it pages
built here and read the parameters of every request in turn.
"""

from __future__ import annotations

import datetime as dt
import json
import types

import pytest
import requests
from singer_sdk.exceptions import InvalidStreamSortException, RetriableAPIError

from tap_sessionreports._sdk import increment_state
from tap_sessionreports.client import MAX_RETRY_WAIT
from tap_sessionreports.period import parse_end as end_instant
from tap_sessionreports.tap import TapSessionReports

BASE = {"api_url": "https://pam.example.com", "api_token": "unit-test-token", "page_size": 3}
UTC = dt.timezone.utc


def stream_of(name: str, config: dict | None = None, state: dict | None = None, catalog: dict | None = None):
    tap = TapSessionReports(config={**BASE, **(config or {})}, state=state, catalog=catalog,
                            parse_env_config=False, validate_config=True)
    return tap.streams[name]


def page(records: list[dict], model: str = "report", path: str = "/api/v2/report") -> requests.Response:
    """A 200 answer of the list, as requests hands it to the paginator."""
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Type"] = "application/json"
    response._content = json.dumps({"result": "success", model: records}).encode()
    response.request = requests.Request("GET", f"https://pam.example.com{path}").prepare()
    return response


def report(report_id: int, modified_at: str) -> dict:
    return {"id": str(report_id), "modified_at": modified_at}


def requests_sent(stream, pages: list[list[dict]]) -> list[dict]:
    """The parameters of every request, each page answering the request before it."""
    paginator = stream.get_new_paginator()
    sent = []
    for records in pages:
        assert not paginator.finished
        sent.append(stream.get_url_params(None, paginator.current_value))
        paginator.advance(page(records, stream.model, stream.path))
    assert paginator.finished
    return sent


def test_a_first_sync_starts_at_start_date_and_an_end_date_day_is_synced():
    stream = stream_of("reports", {"start_date": "2026-01-05", "end_date": "2026-01-10"})
    token = stream.get_new_paginator().current_value
    assert stream.get_url_params(None, token) == {
        "order": "modified_at", "limit": 3, "offset": 0,
        # end_date as a date: the midnight after that day, exclusive
        "filter": "modified_at.ge(2026-01-05T00:00:00Z),modified_at.le(2026-01-11T00:00:00Z)",
    }


def test_the_bookmark_wins_over_start_date_and_query_filter_is_added():
    state = {"bookmarks": {"reports": {"replication_key": "modified_at",
                                       "replication_key_value": "2026-01-07T10:00:00.123456+00:00"}}}
    stream = stream_of("reports", {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-01-08T12:30:00+02:00",
                                   "query_filter": "user_id.in(7),"}, state=state)
    token = stream.get_new_paginator().current_value
    assert stream.get_url_params(None, token)["filter"] == (
        "modified_at.ge(2026-01-07T10:00:00.123456Z),modified_at.le(2026-01-08T10:30:00Z),user_id.in(7)")


class _AnyDatetime(type(dt.datetime)):
    """Every datetime is an instance of the frozen class, as of the real one."""

    def __instancecheck__(cls, value: object) -> bool:
        return isinstance(value, dt.datetime)


def frozen_datetime_module(now: dt.datetime) -> types.ModuleType:
    """A copy of the datetime module whose ``datetime.now()`` is ``now``."""

    class Frozen(dt.datetime, metaclass=_AnyDatetime):
        @classmethod
        def now(cls, tz=None):  # type: ignore[override]
            return now.astimezone(tz) if tz is not None else now.replace(tzinfo=None)

    module = types.ModuleType("datetime")
    module.__dict__.update(vars(dt))
    module.datetime = Frozen  # type: ignore[attr-defined]
    return module


@pytest.mark.parametrize(
    ("now", "since"),
    [
        ("2026-03-10T15:30:00+00:00", "2026-02-08T00:00:00Z"),
        ("2026-03-01T00:00:00+00:00", "2026-01-30T00:00:00Z"),  # across a 28-day February
        ("2024-03-30T23:59:59.999999+00:00", "2024-02-29T00:00:00Z"),  # a leap day, a moment before midnight
        ("2027-01-01T00:30:00+01:00", "2026-12-01T00:00:00Z"),  # still the 31st in UTC
    ],
)
def test_the_default_start_is_midnight_30_days_before_today(monkeypatch, now, since):
    from tap_sessionreports import client

    monkeypatch.setattr(client, "dt", frozen_datetime_module(dt.datetime.fromisoformat(now)))
    stream = stream_of("reports")
    assert stream.get_new_paginator().current_value[0] == since


def test_definitions_are_read_whole_on_a_first_sync_and_from_the_bookmark_after():
    first = stream_of("defined_reports", {"start_date": "2026-01-05"})
    assert first.get_url_params(None, first.get_new_paginator().current_value) == {
        "order": "modified_at", "limit": 3, "offset": 0}
    state = {"bookmarks": {"defined_reports": {"replication_key": "modified_at",
                                               "replication_key_value": "2026-01-06T00:00:00+00:00"}}}
    later = stream_of("defined_reports", state=state)
    assert later.get_url_params(None, later.get_new_paginator().current_value)["filter"] == (
        "modified_at.ge(2026-01-06T00:00:00Z)")


def test_a_full_table_stream_ignores_its_bookmark():
    tap = TapSessionReports(config=BASE, parse_env_config=False)
    catalog = tap.catalog_dict
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "report_subscriptions":
            entry["replication_method"] = "FULL_TABLE"  # what meltano.yml's metadata sets
    state = {"bookmarks": {"report_subscriptions": {"replication_key": "modified_at",
                                                    "replication_key_value": "2026-01-06T00:00:00+00:00"}}}
    stream = stream_of("report_subscriptions", {"end_date": "2026-01-09"}, state=state, catalog=catalog)
    assert stream.get_url_params(None, stream.get_new_paginator().current_value)["filter"] == (
        "modified_at.le(2026-01-10T00:00:00Z)")


def test_pages_restart_at_the_last_time_and_a_page_of_one_time_is_read_by_id():
    stream = stream_of("reports", {"start_date": "2026-01-01"})
    t1, t2, t3 = "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"
    sent = requests_sent(stream, [
        [report(1, t1), report(2, t2), report(3, t2)],  # ends with two records at t2
        [report(3, t2), report(2, t2), report(4, t2)],  # the whole page at t2: t2 is read on its own
        [report(2, t2), report(3, t2), report(4, t2)],  # the group, by id
        [report(5, t2)],
        [],  # the group's end
        [report(5, t2), report(6, t3)],  # on after the group, a little before its end
        [],
    ])
    since = "modified_at.ge(2026-01-03T00:00:00Z)"
    assert sent == [
        {"order": "modified_at", "limit": 3, "offset": 0, "filter": "modified_at.ge(2026-01-01T00:00:00Z)"},
        {"order": "modified_at", "limit": 3, "offset": 0, "filter": since},
        {"order": "id", "limit": 3, "offset": 0, "filter": f"{since},modified_at.le(2026-01-03T00:00:00Z)"},
        {"order": "id", "limit": 3, "offset": 3, "filter": f"{since},modified_at.le(2026-01-03T00:00:00Z)"},
        {"order": "id", "limit": 3, "offset": 4, "filter": f"{since},modified_at.le(2026-01-03T00:00:00Z)"},
        {"order": "modified_at", "limit": 3, "offset": 0, "filter": since},
        {"order": "modified_at", "limit": 3, "offset": 0, "filter": "modified_at.ge(2026-01-04T00:00:00Z)"},
    ]


def test_the_request_parameters_depend_only_on_the_token_and_the_config():
    stream = stream_of("reports", {"start_date": "2026-01-01", "end_date": "2026-02-01T00:00:00Z"})
    token = ("2026-01-03T00:00:00Z", 6, True)
    first = stream.get_url_params(None, token)
    stream.get_new_paginator().advance(page([report(1, "2026-01-20T00:00:00Z")]))  # a sync going on
    assert stream.get_url_params(None, token) == first == {
        "order": "id", "limit": 3, "offset": 6,
        "filter": "modified_at.ge(2026-01-03T00:00:00Z),modified_at.le(2026-01-03T00:00:00Z),"
                  "modified_at.le(2026-02-01T00:00:00Z)",
    }


@pytest.mark.parametrize(("value", "instant"), [
    ("2026-01-10", dt.datetime(2026, 1, 11, tzinfo=UTC)),
    ("2026-01-10T00:00:00Z", dt.datetime(2026, 1, 10, tzinfo=UTC)),
    ("2026-01-10T05:00:00+02:00", dt.datetime(2026, 1, 10, 3, tzinfo=UTC)),
    ("2026-01-10T05:00:00", dt.datetime(2026, 1, 10, 5, tzinfo=UTC)),
    (None, None),
])
def test_end_date_is_the_instant_that_ends_the_period(value, instant):
    assert end_instant(value) == instant


def test_an_end_date_on_a_date_start_dates_day_is_accepted():
    stream = stream_of("reports", {"start_date": "2026-01-10", "end_date": "2026-01-10"})
    assert stream.get_url_params(None, stream.get_new_paginator().current_value)["filter"] == (
        "modified_at.ge(2026-01-10T00:00:00Z),modified_at.le(2026-01-11T00:00:00Z)")


def throttled(retry_after: str | None) -> RetriableAPIError:
    response = requests.Response()
    response.status_code = 429
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return RetriableAPIError("429", response)


def test_waits_double_honour_retry_after_and_have_one_cap():
    stream = stream_of("reports", {"retry_backoff_seconds": 0.5})
    waits = stream.backoff_wait_generator()
    waits.send(None)  # as backoff starts a wait generator
    got = [waits.send(exc) for exc in (
        throttled(None), RetriableAPIError("503"), throttled("7"), requests.exceptions.ConnectionError(),
        throttled("100000"),
    )]
    assert got == [0.5, 1.0, 7.0, 4.0, MAX_RETRY_WAIT]
    assert stream.retry_wait(None, 20) == MAX_RETRY_WAIT
    assert stream.backoff_max_tries() == 5
    assert stream_of("reports", {"max_retries": 2}).backoff_max_tries() == 2


@pytest.mark.parametrize("fast", [True, False], ids=["sorted-list-path", "singer-sdk-path"])
def test_the_bookmark_follows_the_records_never_back_and_holds_for_rechecked_reports(fast):
    stream = stream_of("reports", {"start_date": "2026-01-01"})
    if fast:  # as get_records sets it for a sorted list read whole
        stream._bookmark = stream.get_context_state(None)
    increment_state(stream, {"id": "1", "modified_at": "2026-01-02T00:00:00.000000+00:00"})
    increment_state(stream, {"id": "2", "modified_at": "2026-01-03T00:00:00.000000+00:00"})
    assert stream.get_context_state(None)["replication_key_value"] == "2026-01-03T00:00:00.000000+00:00"
    stream.holding_bookmark = True  # a re-checked report, older than the bookmark
    increment_state(stream, {"id": "0", "modified_at": "2026-01-01T00:00:00.000000+00:00"})
    assert stream.get_context_state(None)["replication_key_value"] == "2026-01-03T00:00:00.000000+00:00"
    stream.holding_bookmark = False
    with pytest.raises(InvalidStreamSortException, match="Unsorted data detected"):
        increment_state(stream, {"id": "3", "modified_at": "2026-01-02T12:00:00.000000+00:00"})
