"""singer-sdk's standard tap tests, against the Fudo sandbox."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_sessionreports.tap import TapSessionReports
from tests.sandbox import start

SANDBOX = start("sessionreports", scale=40, days=10, definitions=3, subscriptions=6)

TestTapSessionReports = get_tap_test_class(
    tap_class=TapSessionReports,
    config={
        "api_url": SANDBOX.url,
        "api_token": SANDBOX.app.token,
        "page_size": 7,
    },
    suite_config=SuiteConfig(),
)
