"""tap-ekran against an Ekran sandbox served over TLS with a private CA, as
self-hosted Ekran servers often are."""

from __future__ import annotations

import datetime as dt
import shutil
import ssl
import subprocess

import pytest

from tests.sandbox import Sandbox
from tests.sandbox.ekran import App
from tests.taputil import assert_no_secret, run_tap

TAP = "tap-ekran"

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """The sandbox on https://127.0.0.1, its certificate signed by a CA of our own."""
    tmp = tmp_path_factory.mktemp("tls")
    ca_key, ca_pem, key, csr, cert = (tmp / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))

    def openssl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca_pem,
            "-days", "2", "-subj", "/CN=Sandbox Private CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1")
    ext = tmp / "san.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key, "-CAcreateserial",
            "-out", cert, "-days", "2", "-extfile", ext)

    server = Sandbox(App(scale=120, days=1))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server._server.socket = context.wrap_socket(server._server.socket, server_side=True)
    server.start()
    yield f"https://127.0.0.1:{server.port}", ca_pem, server
    server.stop()


def config_for(url, server, **extra):
    start = dt.datetime.combine(server.app.first_day, dt.time(), dt.timezone.utc)
    return {"api_url": url, "api_token": "sandbox-ekran-api-key", "start_date": start.isoformat(),
            "retry_backoff_seconds": 0.01, "max_retries": 2, **extra}


def test_a_private_ca_is_refused_by_default_with_a_hint(tls_server):
    url, _, server = tls_server
    run = run_tap(TAP, config_for(url, server))
    assert run.returncode != 0
    assert "TLS verification of https://127.0.0.1" in run.stderr and "set ca_bundle" in run.stderr
    assert "certificate verify failed" in run.stderr
    assert_no_secret(run, "sandbox-ekran-api-key")


def test_ca_bundle_verifies_the_server(tls_server):
    url, ca_pem, server = tls_server
    run = run_tap(TAP, config_for(url, server, ca_bundle=str(ca_pem)))
    assert run.returncode == 0, run.stderr[-3000:]
    assert len({r["sessionId"] for r in run.records("sessions")}) == 120


def test_verify_ssl_false_skips_verification(tls_server):
    url, _, server = tls_server
    run = run_tap(TAP, config_for(url, server, verify_ssl=False))
    assert run.returncode == 0, run.stderr[-3000:]
    assert len({r["sessionId"] for r in run.records("sessions")}) == 120
