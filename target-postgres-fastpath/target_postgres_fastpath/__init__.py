"""target-postgres 0.8.1 with a faster text form of array and JSON columns.

target-postgres loads with COPY: psycopg writes each row in COPY's text
format, an array column (``jsonb[]``, as target-postgres makes of an array of
objects) in PostgreSQL's array literal, ``{"...","..."}``. psycopg's
``ListDumper`` quotes each element and escapes its double quotes and
backslashes with ``re.sub`` and a template (``\\\\\\1``), which expands the
template in Python for every character it escapes: a JSON element has a
double quote around every key and string. On BeyondTrust's support sessions
(customers, representatives, teams, surveys and files are arrays of objects)
that is most of the loader's CPU.

:class:`FastListDumper` is psycopg 3.3.6's ``ListDumper`` with that escape
done by ``bytes.replace``, and nothing else changed: the same bytes (checked
equal in tests/loaders).

Every ``jsonb`` value (and every element of a ``jsonb[]``) goes through the
connector's ``serialize_json``: singer-sdk 0.54.9's calls
``simplejson.dumps(obj, use_decimal=True, separators=(",", ":"))``, which
builds a new ``JSONEncoder`` with those arguments for every value, 12 a
BeyondTrust session. :func:`serialize_json` encodes with one such encoder
built once: the same class with the same arguments, whose ``encode`` keeps
nothing from one value to the next, so the same text.

SQLAlchemy keeps every statement it compiles in its engine's cache (up to
500), and target-postgres loads each batch through a temporary table of a
new name: its CREATE, COPY, MERGE and DROP compile anew every batch, and
each cached entry keeps that table's metadata alive, so the loader grew
with the number of batches until the cache was full (1,000,000 records in
files of 10,000: 113 MB after the first files, 124 MB at the end).
:func:`create_engine` is singer-sdk's engine with the cache off
(``execution_options(compiled_cache=None)``, SQLAlchemy's documented way):
108 MB throughout, at the same CPU.

Everything else (tables, types, COPY, upserts, ACTIVATE_VERSION, STATE,
logging) is target-postgres's own. Any other psycopg version than the one
this was checked against runs psycopg's own dumper, any other singer-sdk
version its own ``serialize_json``, a target-postgres with an engine of
its own that engine.
"""

from __future__ import annotations

import logging
import typing as t
from importlib.metadata import version

import psycopg
import simplejson
import sqlalchemy
from psycopg.abc import Buffer
from psycopg.types.array import ListDumper

# the version whose ListDumper.dump FastListDumper was checked equal to (tests/loaders)
CHECKED_PSYCOPG = "3.3.6"
# the version whose SQLConnector.serialize_json serialize_json was checked equal to (tests/loaders)
CHECKED_SINGER_SDK = "0.54.9"

LOGGER = logging.getLogger("target-postgres")


class _Escape:
    """The one call psycopg 3.3.6's ``ListDumper.dump`` makes of its ``_re_esc``, a compiled
    pattern of a backslash or a double quote: ``sub(template, element)``, a backslash before each
    of them. Here by ``bytes.replace``, without expanding the template for every match."""

    @staticmethod
    def sub(_template: bytes, element: Buffer) -> bytes:
        return bytes(element).replace(b"\\", b"\\\\").replace(b'"', b'\\"')


class FastListDumper(ListDumper):
    """psycopg's text dumper of a Python list, its escaping without a regular-expression template."""

    _re_esc = _Escape()  # type: ignore[assignment]


# singer_sdk.helpers._util.dump_json's arguments (0.54.9): simplejson.dumps(obj, use_decimal=True,
# separators=(",", ":")) is JSONEncoder(use_decimal=True, separators=(",", ":")).encode(obj)
_ENCODER = simplejson.JSONEncoder(use_decimal=True, separators=(",", ":"))


def serialize_json(_connector: object, obj: object) -> str:
    """singer-sdk 0.54.9's ``SQLConnector.serialize_json``, with its encoder built once."""
    return _ENCODER.encode(obj)


def create_engine(connector: t.Any) -> sqlalchemy.Engine:
    """singer-sdk's engine of the connector (what target-postgres 0.8.1 uses), with no compiled-statement cache."""
    from singer_sdk.sql import SQLConnector

    return SQLConnector.create_engine(connector).execution_options(compiled_cache=None)


def _checked(package: str, checked: str, what: str) -> bool:
    installed = version(package)
    if installed != checked:
        LOGGER.warning("%s %s is installed, the fast path was checked against %s: running %s",
                       package, installed, checked, what)
        return False
    return True


def install() -> bool:
    """Make psycopg dump lists with :class:`FastListDumper` and target-postgres's connector serialise
    JSON with :func:`serialize_json`, each only on the version it was checked against (else the
    original, with a warning), and build its engine with :func:`create_engine` unless it builds
    its own; True when all three are installed."""
    from singer_sdk.sql import SQLConnector
    from target_postgres.connector import PostgresConnector

    engine = PostgresConnector.create_engine in (SQLConnector.create_engine, create_engine)
    if engine:
        PostgresConnector.create_engine = create_engine
    else:
        LOGGER.warning("target-postgres builds its own engine: running it with SQLAlchemy's statement cache")

    dumper = _checked("psycopg", CHECKED_PSYCOPG, "psycopg's own array dumper")
    if dumper:
        psycopg.adapters.register_dumper(list, FastListDumper)
    serializer = _checked("singer-sdk", CHECKED_SINGER_SDK, "its own serialize_json")
    if serializer:
        PostgresConnector.serialize_json = serialize_json
    return dumper and serializer and engine


def main() -> None:
    """The ``target-postgres-fastpath`` command: target-postgres's, with the fast path installed."""
    from target_postgres.target import TargetPostgres

    install()
    TargetPostgres.cli()
