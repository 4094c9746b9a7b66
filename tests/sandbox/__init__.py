"""Local servers that behave like the vendors' APIs (see core.py).

Each vendor is a module here (``tests/sandbox/<vendor>.py``) that defines
``App``, a ``core.VendorApp`` whose constructor takes keyword arguments only:
``seed``, ``scale`` (how many of the vendor's main records), ``days`` (the
range of days the data is spread over, ending today) and its own options.
"""

from __future__ import annotations

import importlib
import pkgutil
import typing as t

from tests.sandbox.core import Fault, Request, Response, Sandbox, VendorApp

__all__ = ["Fault", "Request", "Response", "Sandbox", "VendorApp", "start", "vendors"]

_NOT_VENDORS = {"core"}


def vendors() -> list[str]:
    """The vendor modules present in this package."""
    return sorted(
        m.name
        for m in pkgutil.iter_modules(__path__)
        if not m.name.startswith("_") and m.name not in _NOT_VENDORS
    )


def make_app(vendor: str, **options: t.Any) -> VendorApp:
    module = importlib.import_module(f"tests.sandbox.{vendor}")
    return module.App(**options)


def start(vendor: str, port: int = 0, **options: t.Any) -> Sandbox:
    """Start one vendor's sandbox on 127.0.0.1 in a background thread."""
    return Sandbox(make_app(vendor, **options), port=port).start()
