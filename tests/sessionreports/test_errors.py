"""tap-sessionreports under faults, vendor errors, proxies and bad config."""

from __future__ import annotations

import pytest

from tests.sessionreports.helpers import TAP, TOKEN, config_for, keys
from tests.taputil import assert_no_secret, run_tap

ALL = ("reports", "defined_reports", "report_subscriptions", "report_rows")


@pytest.fixture
def sessionreports(sandbox_factory):
    return sandbox_factory("sessionreports", scale=60, days=20, definitions=3, subscriptions=8)


@pytest.fixture
def clean(sessionreports):
    """A clean run's keys per stream, to compare faulty runs with."""
    run = run_tap(TAP, config_for(sessionreports, page_size=9))
    assert run.returncode == 0, run.stderr[-3000:]
    sessionreports.clear_log()
    return {stream: sorted(set(keys(run, stream))) for stream in ALL}


FAULTS = {
    "429 with Retry-After": {"kind": "status", "status": 429, "retry_after": 1},
    "500": {"kind": "status", "status": 500},
    "502": {"kind": "status", "status": 502},
    "503": {"kind": "status", "status": 503},
    "reset": {"kind": "reset"},
    "truncate": {"kind": "truncate"},
    "slow past request_timeout": {"kind": "slow", "delay": 2},
}


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_transient_faults_are_retried_and_lose_nothing(sessionreports, clean, fault):
    # on a list page (the second of reports), and on two CSV downloads
    sessionreports.add_fault(path=r"^/api/v2/report$", skip=1, **fault)
    sessionreports.add_fault(path=r"/csv$", skip=3, times=2, **fault)
    run = run_tap(TAP, config_for(sessionreports, page_size=9, request_timeout=1))
    assert run.returncode == 0, run.stderr[-3000:]
    assert sessionreports.pending_faults() == 0
    assert {stream: sorted(set(keys(run, stream))) for stream in ALL} == clean
    # nothing read twice: a broken CSV is read again from the row it broke at
    assert len(keys(run, "report_rows")) == len(clean["report_rows"])
    if fault.get("retry_after"):
        log = sessionreports.logged(r"^/api/v2/report$")
        hit = next(i for i, entry in enumerate(log) if entry["status"] == 429)
        assert log[hit + 1]["time"] - log[hit]["time"] >= 0.95  # Retry-After: 1, not the 0.01 backoff


def test_retries_give_up_with_a_clear_error(sessionreports):
    sessionreports.add_fault("status", status=503, path=r"^/api/v2/report$", times=10)
    run = run_tap(TAP, config_for(sessionreports, max_retries=3), streams=["reports"])
    assert run.returncode != 0
    assert "GET /api/v2/report answered 503" in run.stderr
    assert len(sessionreports.logged(r"^/api/v2/report$")) == 3


def test_csv_that_keeps_breaking_fails_loudly(sessionreports):
    sessionreports.add_fault("reset", path=r"/csv$", times=10)
    run = run_tap(TAP, config_for(sessionreports, max_retries=3), streams=["reports", "report_rows"])
    assert run.returncode != 0
    assert "CSV download broke off" in run.stderr and "giving up" in run.stderr


def test_malformed_page_fails_loudly(sessionreports):
    sessionreports.add_fault("malformed", path=r"^/api/v2/report$", skip=1)
    run = run_tap(TAP, config_for(sessionreports, page_size=9), streams=["reports"])
    assert run.returncode != 0
    assert "GET /api/v2/report answered 200 with a body that is not JSON" in run.stderr
    # the pages before the bad one were written, nothing after it
    assert len(keys(run, "reports")) == 9


def test_bad_token_fails_clearly_without_revealing_it(sessionreports):
    secret = "wrong-token-s3cr3t-value"
    run = run_tap(TAP, {**config_for(sessionreports), "api_token": secret})
    assert run.returncode != 0
    assert "answered 401" in run.stderr and "invalid or missing API token" in run.stderr
    assert_no_secret(run, secret, TOKEN)
    assert all(entry["status"] == 401 for entry in sessionreports.logged())
    assert len(sessionreports.logged()) == 1  # 4xx: no retries


@pytest.mark.parametrize(
    ("stream", "path", "message"),
    [
        ("reports", "/_test/error200", "GET /_test/error200 answered result=error: Session expired, log in again"),
        ("reports", "/_test/not-envelope", 'not the expected envelope {"result": "success", "report": [...]}'),
        ("report_subscriptions", "/_test/html/login", "answered 200 with an HTML page ('Sign in - Corporate Proxy')"),
        ("report_rows", "/_test/html/{report_id}", "answered an HTML page ('Sign in - Corporate Proxy') instead of"),
        ("defined_reports", "/_test/html502", "answered 502 Bad Gateway: an HTML page ('502 Bad Gateway')"),
        ("report_rows", "/api/v2/report/{report_id}/nope", "answered 404 Not Found: Not found"),
    ],
    ids=["result-error-200", "not-envelope", "html-200", "html-csv", "html-502-proxy", "csv-404"],
)
def test_answers_that_are_not_the_api_fail_naming_the_endpoint(sessionreports, stream, path, message):
    streams = ["reports", "report_rows"] if stream == "report_rows" else [stream]
    run = run_tap(TAP, config_for(sessionreports, max_retries=2, paths={stream: path}), streams=streams)
    assert run.returncode != 0
    assert message in run.stderr
    assert_no_secret(run, TOKEN)


def test_vendor_error_message_reaches_the_user(sessionreports):
    run = run_tap(TAP, config_for(sessionreports, query_filter="user_id.in(1"), streams=["reports"])
    assert run.returncode != 0
    assert "GET /api/v2/report answered 400 Bad Request: Invalid filter: unbalanced parenthesis" in run.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api_url": "pam.example.com"}, "'pam.example.com' does not match '^https?://"),
        ({"api_token": ""}, "'' should be non-empty in config['api_token']"),
        ({"start_date": "last tuesday"}, "start_date must be an ISO 8601 date or date-time, got 'last tuesday'"),
        ({"start_date": "2026-01-10", "end_date": "2026-01-09"}, "end_date must be after start_date"),
        ({"page_size": 0}, "0 is less than the minimum of 1 in config['page_size']"),
        ({"max_retries": 0}, "0 is less than the minimum of 1 in config['max_retries']"),
        ({"request_timeout": 0}, "0 is less than or equal to the minimum of 0 in config['request_timeout']"),
        ({"retry_backoff_seconds": -1}, "-1 is less than the minimum of 0 in config['retry_backoff_seconds']"),
        ({"paths": {"sessions": "/x"}}, "('sessions' was unexpected) in config['paths']"),
        ({"paths": {"report_rows": "/api/v2/report/csv"}}, "in config['paths']['report_rows']"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, "ca_bundle '/nonexistent/ca.pem' is not a readable file"),
    ],
    ids=["url", "token", "start", "end", "page", "retries", "timeout", "backoff", "paths", "placeholder", "ca"],
)
def test_bad_config_fails_before_any_request(sessionreports, change, message):
    secret = "config-s3cret-token"
    config = {**config_for(sessionreports), "api_token": secret, **change}
    run = run_tap(TAP, config)
    assert run.returncode != 0
    assert message in run.stderr
    assert sessionreports.logged() == []
    assert_no_secret(run, secret)


def test_tls_settings_reach_the_session(tmp_path):
    from tap_sessionreports.tap import TapSessionReports

    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    base = {"api_url": "https://pam.example.com", "api_token": "t"}
    verify = {}
    for name, extra in {"default": {}, "off": {"verify_ssl": False}, "bundle": {"ca_bundle": str(bundle)}}.items():
        tap = TapSessionReports(config={**base, **extra}, parse_env_config=False, validate_config=True)
        verify[name] = tap.streams["reports"].requests_session.verify
    assert verify == {"default": True, "off": False, "bundle": str(bundle)}


def test_a_token_of_the_wrong_type_is_not_quoted_in_the_error(sessionreports):
    run = run_tap(TAP, {**config_for(sessionreports), "api_token": 987654321})
    assert run.returncode != 0
    assert "<api_token> is not of type 'string' in config['api_token']" in run.stderr
    assert_no_secret(run, "987654321")
    assert sessionreports.logged() == []


def test_a_server_that_ignores_the_filter_fails_instead_of_looping(sandbox_factory):
    server = sandbox_factory("sessionreports", scale=60, days=45)
    serve_page = server.app._reports_page
    server.app._reports_page = lambda terms, *args: serve_page([], *args)  # drops every filter term
    run = run_tap(TAP, config_for(server, page_size=7), streams=["reports"], timeout=60)
    assert run.returncode != 0
    assert "ignores the filter" in run.stderr or "Unsorted data detected" in run.stderr
    assert len(server.logged(r"^/api/v2/report$")) <= 3


def test_a_server_that_ignores_the_order_fails_without_moving_the_bookmark(sandbox_factory):
    server = sandbox_factory("sessionreports", scale=60, days=45)
    serve_page = server.app._reports_page
    server.app._reports_page = lambda *args: serve_page(*args)[::-1]  # each page newest first
    run = run_tap(TAP, config_for(server, page_size=7), streams=["reports"], timeout=60)
    assert run.returncode != 0
    assert "Unsorted data detected in stream" in run.stderr
    # the page's newest record, then the older one that trips the check; no
    # STATE carries a bookmark, so the next sync reads from start_date again
    first, second = run.records("reports")
    assert second["modified_at"] < first["modified_at"]
    assert all("replication_key_value" not in s.get("bookmarks", {}).get("reports", {}) for s in run.states())
    assert len(server.logged(r"^/api/v2/report$")) == 1
