"""tap-beyondtrust's transport and config rules: the waits between attempts,
the token request retried by the same path as the reports, the schema's
rules and those across settings, the meaning of start_date and end_date."""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from singer_sdk.exceptions import ConfigValidationError, RetriableAPIError

from tap_beyondtrust.client import BeyondTrustStream, parse_when
from tap_beyondtrust.period import end_instant as end_bound
from tap_beyondtrust.tap import TapBeyondTrust
from tests.taputil import assert_no_secret, run_tap

TAP = "tap-beyondtrust"
UTC = dt.timezone.utc
BASE = {"api_url": "https://support.example.com", "client_id": "client", "client_secret": "s3cret-value"}


def stream(**config):
    tap = TapBeyondTrust(config={**BASE, **config}, validate_config=True)
    return tap.streams["support_sessions"]


def failure(retry_after=None):
    response = requests.Response()
    response.status_code = 429
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return RetriableAPIError("throttled", response)


def waits(gen, exceptions):
    gen.send(None)  # as the backoff decorator starts a wait generator
    return [gen.send(exc) for exc in exceptions]


def test_waits_double_from_retry_backoff_seconds_and_retry_after_wins():
    s = stream(retry_backoff_seconds=2)
    assert waits(s.backoff_wait_generator(), [failure(), failure(), failure("7"), failure(), failure("0")]) == [
        2, 4, 7, 16, 0]


def test_one_cap_on_a_single_wait_whether_doubled_or_asked():
    s = stream(retry_backoff_seconds=300)
    assert waits(s.backoff_wait_generator(), [failure(), failure(), failure(), failure("86400")]) == [
        300, 600, 600, 600]
    dropped = requests.exceptions.ConnectionError("reset")  # no response: the doubling
    assert waits(stream(retry_backoff_seconds=1).backoff_wait_generator(), [dropped, dropped]) == [1, 2]


def test_retry_settings_reach_the_decorator():
    s = stream(max_retries=7, request_timeout=12.5)
    assert s.backoff_max_tries() == 7 and s.timeout == 12.5
    assert s.backoff_jitter(3.0) == 3.0


def test_one_authenticator_for_every_stream():
    tap = TapBeyondTrust(config=BASE, validate_config=True)
    requesting = [s for s in tap.streams.values() if isinstance(s, BeyondTrustStream)]
    assert len(requesting) > 5
    authenticators = {id(s.authenticator) for s in requesting}
    assert len(authenticators) == 1, "the appliance holds at most 30 tokens per account: one is shared"


@pytest.mark.parametrize("config", [
    {}, {"verify_ssl": False, "request_timeout": 12.5}, {"ca_bundle": "/etc/ssl/private-ca.pem", "verify_ssl": False}])
def test_the_token_request_verifies_tls_and_times_out_as_the_reports_do(config):
    tap = TapBeyondTrust(config={**BASE, **config}, validate_config=True)
    report = tap.streams["support_sessions"]
    assert (tap.oauth.verify, tap.oauth.timeout) == (report.requests_session.verify, report.timeout)
    assert tap.oauth.verify == config.get("ca_bundle", config.get("verify_ssl", True))
    assert tap.oauth.timeout == config.get("request_timeout", 300)


@pytest.mark.parametrize(("change", "named"), [
    ({"request_timeout": 0}, "request_timeout"),
    ({"max_retries": 0}, "max_retries"),
    ({"retry_backoff_seconds": -1}, "retry_backoff_seconds"),
    ({"lookback_seconds": -1}, "lookback_seconds"),
    ({"window_days": 0}, "window_days"),
    ({"api_url": "support.example.com"}, "api_url"),
    ({"client_id": "  "}, "client_id"),
    ({"start_date": "yesterday"}, "start_date"),
    ({"start_date": "2024-13-45"}, "start_date"),  # the form is right, the calendar is not
    ({"start_date": "2024-05-01T10:00:00Z", "end_date": "2024-05-01T10:00:00Z"}, "end_date"),  # empty period
    ({"start_date": "2024-05-02", "end_date": "2024-05-01"}, "end_date"),
    ({"survey_rep_id": 1, "survey_team_id": 2}, "survey_team_id"),
])
def test_bad_config_names_the_setting_and_never_the_secret(change, named):
    with pytest.raises(ConfigValidationError) as caught:
        TapBeyondTrust(config={**BASE, **change}, validate_config=True)
    text = " ".join(caught.value.errors)
    assert named in text
    assert BASE["client_secret"] not in text


def test_a_one_day_backfill_is_valid():
    TapBeyondTrust(config={**BASE, "start_date": "2024-05-01", "end_date": "2024-05-01"}, validate_config=True)


def test_start_date_and_end_date_mean_what_the_setting_texts_say():
    assert parse_when("2024-05-01") == dt.datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_when("2024-05-01T10:00:00+02:00") == dt.datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert parse_when("2024-05-01T10:00:00") == dt.datetime(2024, 5, 1, 10, tzinfo=UTC)
    # end_date: exclusive; a date ends at the midnight after it (that day is synced)
    assert end_bound({"end_date": "2024-05-01"}) == dt.datetime(2024, 5, 2, tzinfo=UTC)
    assert end_bound({"end_date": "2024-05-01T06:30:00Z"}) == dt.datetime(2024, 5, 1, 6, 30, tzinfo=UTC)
    assert end_bound({}) is None


# ------------------------------------------------------------------ the token request, against the sandbox
@pytest.fixture
def small(sandbox_factory):
    return sandbox_factory("beyondtrust", scale=40, days=2)


def config_for(server, **extra):
    return {"api_url": server.url, **server.app.info()["credentials"], "retry_backoff_seconds": 0.01,
            "request_timeout": 10, **extra}


@pytest.mark.parametrize("status", [503, 429])
def test_a_failing_token_request_is_retried_like_a_report(small, status):
    small.add_fault("status", status=status, path="/oauth2/token", times=2)
    run = run_tap(TAP, config_for(small), streams=["support_sessions"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert [c["status"] for c in small.logged("/oauth2/token")] == [status, status, 200]
    assert len(run.records("support_sessions")) == small.app.info()["expected_counts"]["support_sessions"]


def test_a_token_request_that_keeps_failing_stops_after_max_retries(small):
    small.add_fault("status", status=503, path="/oauth2/token", times=10)
    run = run_tap(TAP, config_for(small, max_retries=3), streams=["support_sessions"])
    assert run.returncode != 0
    assert "/oauth2/token" in run.stderr and "503" in run.stderr
    assert len(small.logged("/oauth2/token")) == 3
    assert small.logged("/api/reporting") == []
    assert_no_secret(run, small.app.info()["credentials"]["client_secret"])
