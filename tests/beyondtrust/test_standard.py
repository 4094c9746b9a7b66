"""singer-sdk's standard tap tests, against the BeyondTrust sandbox."""

from __future__ import annotations

import datetime as dt

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_beyondtrust.tap import TapBeyondTrust
from tests.sandbox import start

SANDBOX = start("beyondtrust", scale=150, days=3, team_events_per_day=10, jump_events_per_day=6,
                vault_events_per_day=4, archive_count=4, archive_events=1000,
                state_null_tables=())  # the standard tests want rows in every stream

TestTapBeyondTrust = get_tap_test_class(
    tap_class=TapBeyondTrust,
    config={
        "api_url": SANDBOX.url,
        **SANDBOX.app.info()["credentials"],
        "start_date": dt.datetime.fromtimestamp(SANDBOX.app.first_ts, dt.timezone.utc).isoformat(),
        "retry_backoff_seconds": 0.01,
    },
    suite_config=SuiteConfig(),
)
