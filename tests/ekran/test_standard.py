"""singer-sdk's standard tap tests, against the Ekran sandbox."""

from __future__ import annotations

import datetime as dt

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_ekran.tap import TapEkran
from tests.sandbox import start

SANDBOX = start("ekran", scale=600, days=3, users=6, clients=4)

TestTapEkran = get_tap_test_class(
    tap_class=TapEkran,
    config={
        "api_url": SANDBOX.url,
        "api_token": SANDBOX.app.token,
        "start_date": dt.datetime.combine(SANDBOX.app.first_day, dt.time(), dt.timezone.utc).isoformat(),
        "page_size": 100,
    },
    suite_config=SuiteConfig(),
)
