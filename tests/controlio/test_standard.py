"""singer-sdk's standard tap tests, against the Controlio sandbox.

singer-sdk builds the test class from a config at import time (to list the
streams, which needs no server); the sandbox starts in a class fixture, and the
runner that syncs against it is built there with its URL."""

from __future__ import annotations

import typing as t

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class
from singer_sdk.testing.runners import TapTestRunner

from tap_controlio.tap import TapControlio
from tests.sandbox import Sandbox, start
from tests.taputil import select_streams

CONFIG = {"api_token": "sandbox-controlio-token", "page_size": 50}
# every stream, captions included (it is not selected by default)
CATALOG = TapControlio(config=CONFIG).catalog_dict
CATALOG = select_streams(CATALOG, [s["tap_stream_id"] for s in CATALOG["streams"]])
SUITE = SuiteConfig()

StandardTests = get_tap_test_class(tap_class=TapControlio, config=CONFIG, catalog=CATALOG, suite_config=SUITE)


@pytest.fixture(scope="class")
def standard_sandbox() -> t.Iterator[Sandbox]:
    server = start("controlio", scale=300, days=2, users=4, computers=2, activities=4)
    yield server
    server.stop()


class TestTapControlio(StandardTests):  # type: ignore[valid-type,misc]
    @pytest.fixture(scope="class")
    def runner(self, standard_sandbox: Sandbox) -> TapTestRunner:
        app = standard_sandbox.app
        runner = TapTestRunner(
            tap_class=TapControlio,
            config={**CONFIG, "api_url": standard_sandbox.url, "api_token": app.token,
                    "start_date": app.first_day.isoformat(), "end_date": app.today.isoformat()},
            suite_config=SUITE,
            catalog=CATALOG,
            parse_env_config=True,
        )
        runner.sync_all()
        return runner
