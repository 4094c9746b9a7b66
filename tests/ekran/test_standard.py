"""singer-sdk's standard tap tests, against the Ekran sandbox."""

from __future__ import annotations

import datetime as dt
import typing as t

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_ekran.tap import TapEkran

#: the sandbox's clock when it generates its sessions, so that start_date is
#: known before the sandbox starts (the runner is built at collection time):
#: yesterday at 18:00 UTC
CLOCK = dt.datetime.combine(dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1), dt.time(18),
                            dt.timezone.utc)
OPTIONS = {"scale": 600, "days": 3, "users": 6, "clients": 4, "now": CLOCK.isoformat()}
#: the runner's config; `api_url` is the sandbox's, set by the `sandbox` fixture before the runner syncs
CONFIG: dict[str, t.Any] = {
    "api_url": "http://127.0.0.1:9",
    "api_token": "sandbox-ekran-api-key",
    "start_date": dt.datetime.combine(CLOCK.date() - dt.timedelta(days=OPTIONS["days"] - 1), dt.time(),
                                      dt.timezone.utc).isoformat(),
    "page_size": 100,
}

_StandardTests = get_tap_test_class(tap_class=TapEkran, config=CONFIG, suite_config=SuiteConfig())


class TestTapEkran(_StandardTests):  # type: ignore[misc,valid-type]
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def sandbox(cls) -> t.Iterator[None]:
        """The sandbox for the class's runner (autouse: it starts before the runner syncs)."""
        from tests.sandbox import start

        server = start("ekran", **OPTIONS)
        try:
            assert CONFIG["start_date"] == dt.datetime.combine(server.app.first_day, dt.time(),
                                                               dt.timezone.utc).isoformat()
            CONFIG["api_url"] = server.url
            yield
        finally:
            server.stop()
