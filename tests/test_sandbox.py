"""The sandbox machinery itself: the CLI, the admin endpoints, fault injection."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.demo import ROOT
from tests.sandbox import vendors

HEADERS = {"Authorization": "Bearer sandbox-activtrak-token"}
LOG_PATH = "/reports/v2/activitylog"


def test_every_vendor_module_is_found():
    assert vendors() == ["activtrak", "beyondtrust", "controlio", "ekran", "sessionreports"]


def test_cli_serves_vendors_on_loopback_and_writes_their_addresses(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.sandbox", "activtrak", "ekran", "--scale", "50", "--state-dir", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "sandbox.env").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        addresses = json.loads((tmp_path / "sandbox.json").read_text())
        assert set(addresses) == {"activtrak", "ekran"}
        assert all(a["url"].startswith("http://127.0.0.1:") for a in addresses.values())
        env_lines = (tmp_path / "sandbox.env").read_text().splitlines()
        assert sorted(line.split("=")[0] for line in env_lines) == ["SANDBOX_ACTIVTRAK_URL", "SANDBOX_EKRAN_URL"]
        info = requests.get(addresses["activtrak"]["url"] + "/_sandbox/info", timeout=10).json()
        assert info["expected_counts"]["activity_log"] == 50
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0


def test_unknown_vendor_is_refused():
    proc = subprocess.run([sys.executable, "-m", "tests.sandbox", "nosuchvendor"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode != 0 and "unknown vendor" in proc.stderr


@pytest.fixture
def server(sandbox_factory):
    return sandbox_factory("activtrak", scale=30, days=2)


def test_faults_over_http_apply_in_order_and_are_logged(server):
    specs = [{"kind": "status", "status": 429, "retry_after": 7}, {"kind": "status", "status": 503, "path": "activity"}]
    assert requests.post(server.url + "/_sandbox/faults", json=specs, timeout=10).json() == {"pending": 2}
    first = requests.get(server.url + LOG_PATH, headers=HEADERS, timeout=10)
    second = requests.get(server.url + LOG_PATH, headers=HEADERS, timeout=10)
    third = requests.get(server.url + LOG_PATH, headers=HEADERS, timeout=10)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert second.status_code == 503 and third.status_code == 200
    log = requests.get(server.url + "/_sandbox/requests", timeout=10).json()
    assert [(e["fault"], e["status"], e["auth"]) for e in log] == [
        ("status", 429, True), ("status", 503, True), (None, 200, True)]
    requests.delete(server.url + "/_sandbox/requests", timeout=10)
    assert requests.get(server.url + "/_sandbox/requests", timeout=10).json() == []


def test_skip_and_path_choose_which_requests_fail(server):
    server.add_fault("status", status=500, path="workinghours", skip=1)
    params = {"from": "2026-01-01", "to": "2026-01-02"}
    statuses = [requests.get(server.url + "/reports/v2/workinghours/users", params=params, headers=HEADERS,
                             timeout=10).status_code for _ in range(3)]
    assert requests.get(server.url + LOG_PATH, headers=HEADERS, timeout=10).status_code == 200
    assert statuses == [200, 500, 200]


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_broken_answers_break_the_client_read(server, kind):
    server.add_fault(kind)
    # the body stops half way: requests sees an incomplete read, as from a dropped connection
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        requests.get(server.url + LOG_PATH, headers=HEADERS, params={"startDate": "2000-01-01"}, timeout=10)


def test_malformed_answer_is_a_200_that_does_not_parse(server):
    server.add_fault("malformed")
    response = requests.get(server.url + LOG_PATH, headers=HEADERS, timeout=10)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()


def test_slow_answer_outlasts_a_short_timeout(server):
    server.add_fault("slow", delay=2)
    with pytest.raises(requests.exceptions.Timeout):
        requests.get(server.url + LOG_PATH, headers=HEADERS, timeout=0.5)


def test_unknown_fault_and_admin_action_are_refused(server):
    assert requests.post(server.url + "/_sandbox/faults", json={"kind": "gremlins"}, timeout=10).status_code == 400
    assert requests.get(server.url + "/_sandbox/nothing", timeout=10).status_code == 404


def test_advance_over_http_adds_records(server):
    before = requests.get(server.url + "/_sandbox/info", timeout=10).json()["expected_counts"]["activity_log"]
    change = requests.post(server.url + "/_sandbox/advance", json={"new": 4, "late": 2}, timeout=10).json()
    after = requests.get(server.url + "/_sandbox/info", timeout=10).json()["expected_counts"]["activity_log"]
    assert (change["new"], change["late"], after) == (4, 2, before + 6)


def test_generation_is_deterministic_from_the_seed(sandbox_factory):
    a = sandbox_factory("activtrak", scale=40, seed=5, today="2026-01-10")
    b = sandbox_factory("activtrak", scale=40, seed=5, today="2026-01-10")
    c = sandbox_factory("activtrak", scale=40, seed=6, today="2026-01-10")
    params = {"startDate": "2025-01-01", "pageSize": 100}
    rows = [requests.get(s.url + LOG_PATH, headers=HEADERS, params=params, timeout=10).json()["activity"]
            for s in (a, b, c)]
    assert rows[0] == rows[1] != rows[2]
    assert len(rows[0]) == 40
