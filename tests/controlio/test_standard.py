"""singer-sdk's standard tap tests, against the Controlio sandbox."""

from __future__ import annotations

from singer_sdk.testing import SuiteConfig, get_tap_test_class

from tap_controlio.tap import TapControlio
from tests.sandbox import start
from tests.taputil import select_streams

SANDBOX = start("controlio", scale=300, days=2, users=4, computers=2, activities=4)
CONFIG = {
    "api_url": SANDBOX.url,
    "api_token": SANDBOX.app.token,
    "start_date": SANDBOX.app.first_day.isoformat(),
    "page_size": 50,
}
# every stream, captions included (it is not selected by default)
CATALOG = TapControlio(config=CONFIG).catalog_dict
CATALOG = select_streams(CATALOG, [s["tap_stream_id"] for s in CATALOG["streams"]])

TestTapControlio = get_tap_test_class(
    tap_class=TapControlio,
    config=CONFIG,
    catalog=CATALOG,
    suite_config=SuiteConfig(),
)
