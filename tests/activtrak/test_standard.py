"""singer-sdk's standard tap tests, against the ActivTrak sandbox (started by
a fixture of the class: the tests fill in its URL before the first sync)."""

from __future__ import annotations

import typing as t

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_activtrak.tap import TapActivTrak
from tests.sandbox import start

# filled in by the `sandbox` fixture below, before the suite's runner syncs
CONFIG: dict[str, t.Any] = {"api_token": "sandbox-activtrak-token"}

StandardTests = get_tap_test_class(tap_class=TapActivTrak, config=CONFIG, suite_config=SuiteConfig())


class TestTapActivTrak(StandardTests):  # type: ignore[misc,valid-type]
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def sandbox(cls) -> t.Iterator[None]:
        server = start("activtrak", scale=1500, days=4, users=5, computers=3)
        CONFIG.update(api_url=server.url, api_token=server.app.token, start_date=server.app.first_day.isoformat())
        yield
        server.stop()
