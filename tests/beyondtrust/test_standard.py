"""singer-sdk's standard tap tests, against the BeyondTrust sandbox.

singer-sdk builds the test class at import, from a config dict it keeps (and
reads again at each sync); the sandbox starts only in the class's fixture,
which fills that dict in before the first sync.
"""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_beyondtrust.tap import TapBeyondTrust
from tests.sandbox import start

#: filled in by the ``sandbox`` fixture; the placeholders only let the tap be built to list its streams
CONFIG: dict[str, t.Any] = {
    "api_url": "http://127.0.0.1:9",
    "client_id": "not-yet",
    "client_secret": "not-yet",
    "retry_backoff_seconds": 0.01,
}

_StandardTests = get_tap_test_class(tap_class=TapBeyondTrust, config=CONFIG, suite_config=SuiteConfig())


class TestTapBeyondTrust(_StandardTests):  # type: ignore[misc,valid-type]
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def sandbox(cls) -> t.Iterator[None]:
        server = start("beyondtrust", scale=150, days=3, team_events_per_day=10, jump_events_per_day=6,
                       vault_events_per_day=4, archive_count=4, archive_events=1000,
                       state_null_tables=())  # the standard tests want rows in every stream
        CONFIG.update({
            "api_url": server.url,
            **server.app.info()["credentials"],
            "start_date": dt.datetime.fromtimestamp(server.app.first_ts, dt.timezone.utc).isoformat(),
        })
        yield
        server.stop()
