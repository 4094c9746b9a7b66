"""The OAuth 2 client-credentials token of the appliance, one per tap.

``POST /oauth2/token`` with HTTP Basic ``client_id:client_secret`` and
``grant_type=client_credentials`` answers ``{"access_token", "token_type",
"expires_in"}``. An API account holds at most 30 valid tokens (a 31st silently
invalidates the oldest), so the tap holds ONE authenticator that every stream
shares: a token is fetched once, reused until shortly before it expires, and
renewed only then or after the appliance rejected it (a 401).

The token request is made inside the stream's request (the authenticator is
called from ``BeyondTrustStream.send``), so it is retried by the same
backoff decorator as every report: 429 and 5xx answers and dropped
connections are retried, other refusals fail at once, naming the settings.
Neither the secret nor a token ever appears in a log line or an error.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import typing as t
from http import HTTPStatus
from urllib.parse import urlparse

import requests
from singer_sdk.authenticators import OAuthAuthenticator
from singer_sdk.exceptions import FatalAPIError, RetriableAPIError
from typing_extensions import override

DEFAULT_TOKEN_PATH = "/oauth2/token"
#: a token is renewed this long before it expires (at most a tenth of its life)
TOKEN_MARGIN_SECONDS = 60
#: the document: close the connection after each call
TOKEN_HEADERS = {"Connection": "close", "Accept": "application/json"}


class BeyondTrustAuthError(FatalAPIError):
    """The appliance refused the client credentials, or answered no token."""


class BeyondTrustOAuth(OAuthAuthenticator):
    """singer-sdk's OAuth authenticator for the client-credentials grant, shared by every stream."""

    def __init__(self, *, token_url: str, client_id: str, client_secret: str, verify: bool | str,
                 timeout: float, logger: logging.Logger) -> None:
        super().__init__(auth_endpoint=token_url, client_id=client_id, client_secret=client_secret,
                         oauth_headers=TOKEN_HEADERS)
        self.verify = verify
        self.timeout = timeout
        self.logger = logger
        self.tokens_fetched = 0
        self._renew_at = 0.0  # time.monotonic() past which the token is renewed
        self._lock = threading.Lock()

    @property
    @override
    def oauth_request_body(self) -> dict:
        return {"grant_type": "client_credentials"}

    @override
    def is_token_valid(self) -> bool:
        return self.access_token is not None and time.monotonic() < self._renew_at

    @override
    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:  # one token for every stream, fetched by one of them
            if not self.is_token_valid():
                self.update_access_token()
            request.headers["Authorization"] = f"Bearer {self.access_token}"
        return request

    def renew(self, rejected: str | None) -> None:
        """Drop the token a 401 rejected (unless another call renewed it already):
        the next request fetches a new one."""
        with self._lock:
            if rejected is None or rejected == self.access_token:
                self.access_token = None

    @override
    def update_access_token(self) -> None:
        """Fetch a token: 429/5xx raise RetriableAPIError (the calling request's
        decorator waits and asks again), other refusals fail naming the settings."""
        path = urlparse(self.auth_endpoint).path
        response = requests.post(
            self.auth_endpoint, auth=(self.client_id or "", self.client_secret or ""),
            data=self.oauth_request_body, headers=TOKEN_HEADERS, timeout=self.timeout,
            verify=self.verify,
        )
        status = response.status_code
        if status == HTTPStatus.TOO_MANY_REQUESTS or status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise RetriableAPIError(f"BeyondTrust {path} answered {status} {response.reason}", response)
        if status != HTTPStatus.OK:
            raise BeyondTrustAuthError(
                f"BeyondTrust {path} refused the client credentials ({status} {response.reason}: "
                f"{_oauth_error(response)}); check the client_id and client_secret settings")
        try:
            payload = response.json()
            token = str(payload["access_token"])
            lifetime = float(payload.get("expires_in") or 3600)
        except (ValueError, KeyError, TypeError):
            raise BeyondTrustAuthError(f"BeyondTrust {path} answered 200 without an access_token") from None
        self.access_token = token
        self.expires_in = int(lifetime)
        self.last_refreshed = dt.datetime.now(dt.timezone.utc)
        # renew a little early, but never treat a short-lived token as expired at once
        self._renew_at = time.monotonic() + max(lifetime - min(TOKEN_MARGIN_SECONDS, lifetime / 10), 1.0)
        self.tokens_fetched += 1
        self.logger.info("Fetched a BeyondTrust access token (valid %ss)", int(lifetime))


def _oauth_error(response: requests.Response) -> str:
    """The OAuth error of a refusal (``error_description`` or ``error``), else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip()
    if isinstance(body, dict):
        return str(body.get("error_description") or body.get("error") or body)[:300]
    return str(body)[:300]


def token_url(config: t.Mapping[str, t.Any]) -> str:
    """The token endpoint: ``paths.token`` (default /oauth2/token) under api_url."""
    return str(config["api_url"]).rstrip("/") + (config.get("paths") or {}).get("token", DEFAULT_TOKEN_PATH)
