"""singer-sdk's standard tap tests, against the Fudo sandbox.

singer-sdk builds the test class from a config when this module is imported,
but its syncs run in the class's ``runner`` fixture: the sandbox starts in a
class fixture before it (never at import or collection time) and its URL goes
into that same config.
"""

from __future__ import annotations

import typing as t

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_sessionreports.tap import TapSessionReports
from tests.sandbox import start

#: completed with the sandbox's URL once it runs (``sandbox`` below)
CONFIG: dict[str, t.Any] = {
    "api_url": "http://127.0.0.1:9",  # nothing listens here: no request is made before the sandbox runs
    "api_token": "sandbox-sessionreports-token",
    "page_size": 7,
}

_TestTapSessionReports = get_tap_test_class(
    tap_class=TapSessionReports,
    config=CONFIG,
    suite_config=SuiteConfig(),
)


class TestTapSessionReports(_TestTapSessionReports):  # type: ignore[misc,valid-type]
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def sandbox(cls) -> t.Iterator[None]:
        server = start("sessionreports", scale=40, days=10, definitions=3, subscriptions=6)
        CONFIG.update(api_url=server.url, api_token=server.app.token)
        try:
            yield
        finally:
            server.stop()
