"""The Ekran sandbox follows the document: what the tap's tests rely on."""

from __future__ import annotations

import datetime as dt

import pytest
import requests

TOKEN = "sandbox-ekran-api-key"


@pytest.fixture
def ekran(sandbox_factory):
    return sandbox_factory("ekran", scale=900, days=3)


def post(server, body, token=TOKEN, **kw):
    headers = {"ApiKey": token} if token else {}
    return requests.post(f"{server.url}/ekranapi/sessions", json=body, headers=headers, timeout=10, **kw)


def test_defaults_answer_every_session_1000_at_a_time(ekran):
    response = post(ekran, {})
    assert response.status_code == 200
    payload = response.json()
    assert set(payload) == {"sessions", "totalCount"}
    assert payload["totalCount"] == 900 and len(payload["sessions"]) == 900
    assert [s["sessionId"] for s in payload["sessions"]] == list(range(1, 901))
    fields = {"duration", "idleTime", "productivityTime", "clientGuid", "clientName", "logoutDate",
              "loginDate", "sessionId", "userName", "userId"}
    assert fields <= set(payload["sessions"][0])


def test_session_count_and_page_index(ekran):
    pages = [post(ekran, {"sessionCount": 400, "pageIndex": i}).json() for i in range(3)]
    assert [len(p["sessions"]) for p in pages] == [400, 400, 100]
    assert {p["totalCount"] for p in pages} == {900}
    assert post(ekran, {"sessionCount": 0}).json() == {"sessions": [], "totalCount": 900}
    assert post(ekran, {"sessionCount": 1000}).status_code == 200
    refused = post(ekran, {"sessionCount": 1001})
    assert refused.status_code == 400 and "1000" in refused.json()["Message"]
    assert post(ekran, {"pageIndex": -1}).status_code == 400


@pytest.mark.parametrize("text", ["2021-04-01", "2021-04-01T12:00", "2021-04-01T12:00:00"])
def test_the_documents_time_formats_are_accepted(ekran, text):
    assert post(ekran, {"start": text, "end": text}).status_code == 200


def test_a_bad_time_is_a_400(ekran):
    response = post(ekran, {"start": "yesterday"})
    assert response.status_code == 400 and "'yesterday'" in response.json()["Message"]


def test_selection_started_or_finished_within(ekran):
    app = ekran.app
    start = dt.datetime.combine(app.first_day, dt.time(12), dt.timezone.utc).timestamp()
    end = start + 6 * 3600
    body = {"start": dt.datetime.fromtimestamp(start, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
            "end": dt.datetime.fromtimestamp(end, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")}
    got = {s["sessionId"] for s in post(ekran, body).json()["sessions"]}
    for sid in range(1, 901):
        login, logout = app.times(sid)
        started = start <= login <= end
        finished = logout is not None and start <= logout <= end
        spanning = logout is not None and login < start and logout > end
        assert (sid in got) == (started or finished or spanning), sid
    assert any(app.times(sid)[0] < start for sid in got)  # begun before start, finished within


def test_auth_and_method(ekran):
    assert post(ekran, {}, token=None).status_code == 401
    assert post(ekran, {}, token="wrong").status_code == 401
    got = requests.get(f"{ekran.url}/ekranapi/sessions", headers={"ApiKey": TOKEN}, timeout=10)
    assert got.status_code == 405


def test_advance_closes_open_sessions_and_opens_new_ones(ekran):
    app = ekran.app
    before = app.info()
    opened = set(before["open_session_ids"])
    changes = app.advance()
    after = app.info()
    assert changes["closed"] and set(changes["closed"]) <= opened
    assert all(app.times(sid)[1] is not None for sid in changes["closed"])
    assert set(after["open_session_ids"]) == (opened - set(changes["closed"])) | {
        sid for sid in changes["new"] if app.times(sid)[1] is None}
    assert after["expected_counts"]["sessions"] == before["expected_counts"]["sessions"] + len(changes["new"])
    closed = app.session(changes["closed"][0])
    assert closed["logoutDate"] and closed["duration"]
