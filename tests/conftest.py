"""Fixtures shared by every tap's tests."""

from __future__ import annotations

import typing as t

import pytest

from tests.sandbox import Sandbox, start


@pytest.fixture
def sandbox_factory() -> t.Iterator[t.Callable[..., Sandbox]]:
    """Start vendor sandboxes on 127.0.0.1; each is stopped after the test.

        server = sandbox_factory("activtrak", scale=2500, days=5)
    """
    started: list[Sandbox] = []

    def factory(vendor: str, **options: t.Any) -> Sandbox:
        server = start(vendor, **options)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
