"""Time windows: what a sync reads, as a pure function of the config, the
state and the sync's start, and the paginator whose tokens are the windows."""

from __future__ import annotations

import datetime as dt
import typing as t

from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_beyondtrust import period
from tap_beyondtrust.client import UTC, parse_when, period_end

if t.TYPE_CHECKING:
    import requests


def first_instant(config: t.Mapping[str, t.Any], now: int) -> dt.datetime:
    """Where a first sync starts: start_date, or 30 days before the day of ``now``, at midnight UTC."""
    if config.get("start_date"):
        return parse_when(config["start_date"])
    return period.default_start(dt.datetime.fromtimestamp(now, UTC))


def last_day(config: t.Mapping[str, t.Any], now: int) -> dt.date:
    """The last UTC date a sync that reads whole days reads: the last that starts before its end."""
    return dt.datetime.fromtimestamp(period_end(config, now) - 1, UTC).date()


class WindowPaginator(BaseAPIPaginator[t.Any]):
    """Walks a list of request tokens (windows); the current one is the token."""

    def __init__(self, tokens: t.Sequence[t.Any]) -> None:
        super().__init__(tokens[0] if tokens else None)
        self.tokens = list(tokens)
        self.position = 0
        if not self.tokens:
            self.advance(None)  # type: ignore[arg-type]  # nothing to read: finished at once

    @override
    def has_more(self, response: requests.Response | None) -> bool:
        return self.position + 1 < len(self.tokens)

    @override
    def get_next(self, response: requests.Response | None) -> t.Any:
        self.position += 1
        return self.tokens[self.position]

    @property
    def next_value(self) -> t.Any:
        """The token after the current one (None after the last)."""
        return self.tokens[self.position + 1] if self.position + 1 < len(self.tokens) else None


def make_windows(lo: int, hi: int, size: int, *, align: int = 0) -> list[tuple[int, int]]:
    """Windows of ``size`` seconds covering [lo, hi); aligned to ``align`` seconds if set."""
    if align:
        lo -= lo % align
    windows = []
    while lo < hi:
        end = min(lo + size, hi)
        if align:
            end = min((lo // align + max(size // align, 1)) * align, hi)
        windows.append((lo, end))
        lo = end
    return windows
