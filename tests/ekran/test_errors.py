"""tap-ekran when things go wrong: injected faults, bad answers, bad config."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import pytest

from tests.taputil import assert_no_secret, run_tap

TAP = "tap-ekran"
TOKEN = "sandbox-ekran-api-key"
PATH = r"^/ekranapi/sessions$"
# one fixed generation time: every sandbox of this module holds the same sessions
NOW = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
OPTIONS = {"scale": 500, "days": 2, "seed": 7, "now": NOW.isoformat()}


def config_for(server, **extra):
    return {
        "api_url": server.url,
        "api_token": TOKEN,
        "start_date": dt.datetime.combine(server.app.first_day, dt.time(), dt.timezone.utc).isoformat(),
        "page_size": 100,
        "lookback_hours": 0,
        "retry_backoff_seconds": 0.01,
        "request_timeout": 1,
        **extra,
    }


@pytest.fixture(scope="module")
def baseline():
    """What a sync without faults emits, per sessionId (a module-wide sandbox)."""
    from tests.sandbox import start

    server = start("ekran", **OPTIONS)
    try:
        run = run_tap(TAP, config_for(server))
        assert run.returncode == 0, run.stderr[-3000:]
        yield Counter(r["sessionId"] for r in run.records("sessions")), len(server.logged())
    finally:
        server.stop()


@pytest.fixture
def ekran(sandbox_factory):
    return sandbox_factory("ekran", **OPTIONS)


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "status", "status": 500},
        {"kind": "status", "status": 502},
        {"kind": "status", "status": 503, "times": 2},
        {"kind": "status", "status": 429},
        {"kind": "slow", "delay": 2},  # past request_timeout=1
        {"kind": "reset"},
        {"kind": "truncate"},
    ],
    ids=["500", "502", "503-twice", "429", "slow", "reset", "truncate"],
)
def test_transient_faults_are_retried_and_lose_nothing(ekran, baseline, fault):
    # the fault hits a page in the middle of the range
    ekran.add_fault(path=PATH, skip=1, **fault)
    run = run_tap(TAP, config_for(ekran))
    assert run.returncode == 0, run.stderr[-3000:]
    expected, requests_without_fault = baseline
    assert Counter(r["sessionId"] for r in run.records("sessions")) == expected
    hit = [e for e in ekran.logged() if e["fault"]]
    assert len(hit) == fault.get("times", 1)
    assert len(ekran.logged()) == requests_without_fault + len(hit)
    assert ekran.pending_faults() == 0
    assert "retrying" in run.stderr


def test_retry_after_is_honoured(ekran, baseline):
    ekran.add_fault("status", status=429, retry_after=1, path=PATH, skip=2)
    run = run_tap(TAP, config_for(ekran, retry_backoff_seconds=0.01))
    assert run.returncode == 0, run.stderr[-3000:]
    assert Counter(r["sessionId"] for r in run.records("sessions")) == baseline[0]
    log = ekran.logged()
    (throttled,) = [i for i, e in enumerate(log) if e["fault"]]
    assert log[throttled]["status"] == 429
    # the retry of the same page came a full second later
    assert log[throttled + 1]["body"] == log[throttled]["body"]
    assert log[throttled + 1]["time"] - log[throttled]["time"] >= 0.95


def test_retries_give_up_after_max_retries(ekran):
    ekran.add_fault("status", status=503, path=PATH, times=10)
    run = run_tap(TAP, config_for(ekran, max_retries=3))
    assert run.returncode != 0
    assert len(ekran.logged()) == 3
    assert "503" in run.stderr and "/ekranapi/sessions" in run.stderr


def test_a_bad_api_key_fails_at_once_with_a_clear_message(ekran):
    secret = "wrong-key-7d1f3a"
    run = run_tap(TAP, config_for(ekran, api_token=secret))
    assert run.returncode != 0
    assert len(ekran.logged()) == 1  # not retried
    assert "401" in run.stderr and "/ekranapi/sessions" in run.stderr
    assert "Authorization has been denied" in run.stderr  # the server's own message
    assert "api_token" in run.stderr
    assert run.records() == []
    assert_no_secret(run, secret)


def test_a_client_error_fails_at_once_with_the_servers_message(ekran):
    ekran.add_fault("status", status=400, path=PATH, skip=1)
    run = run_tap(TAP, config_for(ekran))
    assert run.returncode != 0
    assert len(ekran.logged()) == 2
    assert "400" in run.stderr and "injected 400" in run.stderr
    assert '(the request body was {"start": "' in run.stderr and '"pageIndex": 1}' in run.stderr
    assert_no_secret(run, TOKEN)


def test_the_server_refuses_more_than_1000_sessions_per_request(ekran):
    # what the tap never sends: the sandbox answers as the document says
    import requests

    response = requests.post(
        f"{ekran.url}/ekranapi/sessions", json={"sessionCount": 1001, "pageIndex": 0},
        headers={"ApiKey": TOKEN}, timeout=10,
    )
    assert response.status_code == 400
    assert "1000" in response.json()["Message"]


def test_a_malformed_page_fails_loudly(ekran):
    ekran.add_fault("malformed", path=PATH, skip=1)
    run = run_tap(TAP, config_for(ekran))
    assert run.returncode != 0
    assert "not JSON" in run.stderr and "/ekranapi/sessions" in run.stderr
    assert len(ekran.logged()) == 2  # nothing after the bad page: it was not skipped
    # the records of the first page were written; the state claims that page
    # only (a rerun resumes at the bad one), and no bookmark moved
    assert all("replication_key_value" not in s.get("bookmarks", {}).get("sessions", {}) for s in run.states())
    assert run.states()[-1]["bookmarks"]["sessions"]["resume"]["page_index"] == 1


def test_a_page_without_the_envelope_fails_loudly(ekran, monkeypatch):
    from tests.sandbox.core import Response

    monkeypatch.setattr(ekran.app, "handle", lambda request: Response.json({"data": []}))
    run = run_tap(TAP, config_for(ekran))
    assert run.returncode != 0
    assert "'sessions' list" in run.stderr and "/ekranapi/sessions" in run.stderr


def test_a_page_without_total_count_fails_loudly(ekran, monkeypatch):
    from tests.sandbox.core import Response

    monkeypatch.setattr(ekran.app, "handle", lambda request: Response.json({"sessions": []}))
    run = run_tap(TAP, config_for(ekran))
    assert run.returncode != 0
    assert "totalCount" in run.stderr


def test_a_session_without_session_id_fails_loudly(ekran, monkeypatch):
    from tests.sandbox.core import Response

    row = {"loginDate": "2024-01-01T00:00:00.000+00:00", "duration": "00:01:00.0000000"}
    monkeypatch.setattr(ekran.app, "handle", lambda request: Response.json({"sessions": [row], "totalCount": 1}))
    run = run_tap(TAP, config_for(ekran))
    assert run.returncode != 0
    assert "sessions[0]" in run.stderr and "sessionId" in run.stderr


def test_a_wrong_path_names_the_setting(ekran):
    run = run_tap(TAP, config_for(ekran, paths={"sessions": "/api/sessions"}))
    assert run.returncode != 0
    assert "404" in run.stderr and "paths.sessions" in run.stderr


def test_an_unreachable_server_fails_after_retries(ekran):
    url = ekran.url
    ekran.stop()
    run = run_tap(TAP, config_for(ekran, api_url=url, max_retries=2))
    assert run.returncode != 0
    assert "could not be reached in 2 attempts (check api_url and the network)" in run.stderr
    assert_no_secret(run, TOKEN)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api_url": None}, "'api_url' is a required property"),
        ({"api_token": None}, "'api_token' is a required property"),
        ({"page_size": 5000}, "5000 is greater than the maximum of 1000 in config['page_size']"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle '/nonexistent/ca.pem' is not a readable file"),
    ],
)
def test_bad_config_is_a_clear_error_before_any_request(ekran, change, message):
    config = config_for(ekran)
    for key, value in change.items():
        if value is None:
            config.pop(key)
        else:
            config[key] = value
    run = run_tap(TAP, config)
    assert run.returncode != 0
    assert message in run.stderr
    assert ekran.logged() == []
    assert_no_secret(run, TOKEN)


def test_every_schema_mistake_is_reported_at_once(ekran):
    # the ranges, forms and types of the JSON schema, each naming its setting
    config = config_for(
        ekran,
        api_url="ekran.example.com",
        page_size=0,
        lookback_hours=-1,
        open_session_hold_hours=-2,
        start_date="last tuesday",
        max_retries=0,
        request_timeout=0,
        paths={"session": "/x"},
        verify_ssl="yes",
    )
    run = run_tap(TAP, config)
    assert run.returncode != 0
    for message in (
        "'ekran.example.com' does not match '^https?://' in config['api_url']",
        "0 is less than the minimum of 1 in config['page_size']",
        "-1 is less than the minimum of 0 in config['lookback_hours']",
        "-2 is less than the minimum of 0 in config['open_session_hold_hours']",
        "'last tuesday' does not match",
        "in config['start_date']",
        "0 is less than the minimum of 1 in config['max_retries']",
        "0 is less than or equal to the minimum of 0 in config['request_timeout']",
        "Additional properties are not allowed ('session' was unexpected) in config['paths']",
        "'yes' is not of type 'boolean'",
    ):
        assert message in run.stderr, message
    assert ekran.logged() == []
    assert_no_secret(run, TOKEN)


def test_every_mistake_beyond_the_schema_is_reported_at_once(ekran):
    # the forms are right, the values are not: check_config, after the schema
    config = config_for(
        ekran,
        api_token="   ",
        start_date="2026-02-30",
        end_date="2026-13-01T00:00:00Z",
        timezone="Europe/Atlantis",
        ca_bundle="/nonexistent/ca.pem",
    )
    run = run_tap(TAP, config)
    assert run.returncode != 0
    for message in (
        "api_token is empty",
        "start_date '2026-02-30' is not an ISO 8601 date or date-time",
        "end_date '2026-13-01T00:00:00Z' is not an ISO 8601 date or date-time",
        "timezone 'Europe/Atlantis' is not a known IANA time zone name",
        "ca_bundle '/nonexistent/ca.pem' is not a readable file",
    ):
        assert message in run.stderr, message
    assert ekran.logged() == []


@pytest.mark.parametrize(
    ("start_date", "end_date", "error"),
    [
        ("2026-02-03", "2020-01-01", True),
        ("2026-02-03", "2026-02-02", True),  # the day before: the period would end at the start
        ("2026-02-03T00:00:00+00:00", "2026-02-03T00:00:00Z", True),  # the same instant
        ("2026-02-03", "2026-02-03", False),  # a date ends at the midnight after it: that one day
        ("2026-02-03T06:00:00+02:00", "2026-02-03T04:00:01Z", False),
    ],
)
def test_end_date_must_end_after_start_date(start_date, end_date, error):
    from tap_ekran.tap import check_config

    errors = check_config({"api_url": "https://ekran.example.com", "api_token": "t",
                           "start_date": start_date, "end_date": end_date})
    expected = [f"end_date {end_date!r} (exclusive) is not after start_date {start_date!r}: "
                "the synced period would be empty"]
    assert errors == (expected if error else [])


def test_end_before_start_and_an_empty_key_are_errors(ekran):
    run = run_tap(TAP, config_for(ekran, end_date="2020-01-01", api_token="   "))
    assert run.returncode != 0
    assert "end_date '2020-01-01' (exclusive) is not after start_date" in run.stderr
    assert "api_token is empty" in run.stderr
    assert ekran.logged() == []


def test_a_secret_of_the_wrong_type_is_not_echoed(ekran):
    run = run_tap(TAP, config_for(ekran, api_token=987654321))
    assert run.returncode != 0
    assert "config['api_token']" in run.stderr
    assert "987654321" not in run.output


def test_the_secret_never_reaches_output_or_records(ekran):
    ekran.add_fault("status", status=500, path=PATH)
    run = run_tap(TAP, config_for(ekran))
    assert run.returncode == 0, run.stderr[-3000:]
    assert_no_secret(run, TOKEN)
    assert TOKEN not in json.dumps(run.messages)


def test_tls_settings_reach_the_session(tmp_path):
    from tap_ekran.tap import TapEkran

    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    base = {"api_url": "https://ekran.example.com", "api_token": "t"}
    for extra, verify in (({}, True), ({"verify_ssl": False}, False), ({"ca_bundle": str(bundle)}, str(bundle))):
        tap = TapEkran(config={**base, **extra}, parse_env_config=False)
        assert tap.streams["sessions"].requests_session.verify == verify
