"""singer-sdk's standard tap tests, against the ActivTrak sandbox."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_activtrak.tap import TapActivTrak
from tests.sandbox import start

SANDBOX = start("activtrak", scale=1500, days=4, users=5, computers=3)

TestTapActivTrak = get_tap_test_class(
    tap_class=TapActivTrak,
    config={
        "api_url": SANDBOX.url,
        "api_token": SANDBOX.app.token,
        "start_date": SANDBOX.app.first_day.isoformat(),
    },
    suite_config=SuiteConfig(),
)
