"""From a state and a config to the requests the sessions stream sends,
without a server: the range and its page are the paginator's token, and the
request body depends on the token and the config only."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import requests

from tap_ekran.streams import SessionsPage, SessionsPaginator, SessionsStream
from tap_ekran.tap import TapEkran

UTC = dt.timezone.utc
#: the time the sync begins (its microseconds are dropped: the tap works in whole seconds)
NOW = dt.datetime(2026, 3, 10, 12, 30, 15, 250_000, tzinfo=UTC)
URL = "https://ekran.example.com/ekranapi/sessions"


def stream(**config) -> SessionsStream:
    settings = {"api_url": "https://ekran.example.com", "api_token": "t", "start_date": "2026-03-01",
                "page_size": 100, **config}
    return TapEkran(config=settings, parse_env_config=False).streams["sessions"]


def answer(sessions: int, total: int) -> requests.Response:
    """A page of the API's envelope, with ``sessions`` sessions of ``total``."""
    response = requests.Response()
    response.status_code = 200
    response.url = URL
    response._content = json.dumps({"sessions": [{"sessionId": i} for i in range(sessions)],
                                    "totalCount": total}).encode()
    return response


def bodies(sessions: SessionsStream, state: dict, pages: list[tuple[int, int]]) -> list[dict]:
    """The bodies of the requests of a sync from ``state`` at NOW, the server
    answering ``pages`` ((sessions, totalCount) per page), in order."""
    paginator = SessionsPaginator(sessions.first_page(state, NOW), sessions.page_size)
    sent = []
    for page in pages:
        assert not paginator.finished
        sent.append(sessions.prepare_request_payload(None, paginator.current_value))
        paginator.advance(answer(*page))
    assert paginator.finished
    return sent


def test_a_first_sync_reads_from_start_date_page_by_page():
    sessions = stream()
    assert bodies(sessions, {}, [(100, 250), (100, 250), (50, 250)]) == [
        {"start": "2026-03-01T00:00:00", "sessionCount": 100, "pageIndex": index} for index in range(3)]
    first = sessions.first_page({}, NOW)
    assert first == SessionsPage(dt.datetime(2026, 3, 1, tzinfo=UTC), 0, NOW.replace(microsecond=0))


@pytest.mark.parametrize(
    ("pages", "requests_sent"),
    [
        ([(100, 200), (100, 200)], 2),  # the pages cover totalCount
        ([(0, 0)], 1),  # nothing in the range
        ([(100, 900), (60, 900)], 2),  # a short page ends the range, whatever totalCount says
    ],
)
def test_the_last_page(pages, requests_sent):
    assert [b["pageIndex"] for b in bodies(stream(), {}, pages)] == list(range(requests_sent))


def test_the_next_sync_starts_at_the_bookmark_less_the_lookback():
    state = {"replication_key": "loginDate", "replication_key_value": "2026-03-09T08:00:00+00:00"}
    sessions = stream(lookback_hours=2, page_size=1000)
    assert bodies(sessions, state, [(3, 3)]) == [{"start": "2026-03-09T06:00:00", "sessionCount": 1000, "pageIndex": 0}]
    # never before start_date
    early = {"replication_key_value": "2026-03-01T01:00:00+00:00"}
    assert bodies(sessions, early, [(0, 0)])[0]["start"] == "2026-03-01T00:00:00"


def test_an_interrupted_sync_resumes_at_its_page():
    state = {"replication_key_value": "2026-03-09T08:00:00+00:00",
             "resume": {"start": "2026-03-08T00:00:00+00:00", "page_index": 4}}
    sessions = stream()
    assert bodies(sessions, state, [(100, 650), (50, 650)]) == [
        {"start": "2026-03-08T00:00:00", "sessionCount": 100, "pageIndex": 4},
        {"start": "2026-03-08T00:00:00", "sessionCount": 100, "pageIndex": 5},
    ]
    assert sessions.first_page(state, NOW).resumed
    # a resume point that is not one is ignored: the bookmark rules
    broken = {**state, "resume": {"start": "2026-03-08T00:00:00+00:00", "page_index": "4"}}
    assert sessions.first_page(broken, NOW) == SessionsPage(
        dt.datetime(2026, 3, 9, 7, tzinfo=UTC), 0, NOW.replace(microsecond=0))


def test_start_is_sent_on_the_servers_clock():
    sessions = stream(timezone="Asia/Tokyo", start_date="2026-03-01T00:00:00Z")
    assert bodies(sessions, {}, [(0, 0)])[0]["start"] == "2026-03-01T09:00:00"


@pytest.mark.parametrize(
    ("end_date", "until"),
    [
        ("2026-03-05", dt.datetime(2026, 3, 6, tzinfo=UTC)),  # a date: the midnight after it
        ("2026-03-05T06:30:00Z", dt.datetime(2026, 3, 5, 6, 30, tzinfo=UTC)),  # a date-time: that instant
        ("2026-03-05T06:30:00+02:00", dt.datetime(2026, 3, 5, 4, 30, tzinfo=UTC)),
        ("2026-03-05T06:30:00", dt.datetime(2026, 3, 5, 6, 30, tzinfo=UTC)),  # UTC unless an offset
        ("2026-04-01", NOW.replace(microsecond=0)),  # never past the time the sync began
        (None, NOW.replace(microsecond=0)),
    ],
)
def test_end_date_ends_the_period(end_date, until):
    sessions = stream(**({"end_date": end_date} if end_date else {}))
    first = sessions.first_page({}, NOW)
    assert first.until == until
    # end_date is not sent (the API would clip the sessions across it): the body is the same
    assert sessions.prepare_request_payload(None, first) == {
        "start": "2026-03-01T00:00:00", "sessionCount": 100, "pageIndex": 0}


def test_the_body_depends_on_the_token_only():
    sessions = stream()
    token = SessionsPage(dt.datetime(2026, 3, 7, 5, 4, 3, tzinfo=UTC), 9, NOW)
    assert sessions.prepare_request_payload(None, token) == {
        "start": "2026-03-07T05:04:03", "sessionCount": 100, "pageIndex": 9}
    sessions.first_page({"replication_key_value": "2026-03-09T00:00:00+00:00"}, NOW)
    assert sessions.prepare_request_payload({"any": "context"}, token)["start"] == "2026-03-07T05:04:03"
    assert sessions.get_url_params(None, token) == {}
