"""target-postgres 0.8.1 with a faster text form of array columns.

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
Everything else (tables, types, COPY, upserts, ACTIVATE_VERSION, STATE,
logging) is target-postgres's own. Any other psycopg version than the one
this was checked against runs psycopg's own dumper.
"""

from __future__ import annotations

import logging
from importlib.metadata import version

import psycopg
from psycopg.abc import Buffer
from psycopg.types.array import ListDumper

# the version whose ListDumper.dump FastListDumper was checked equal to (tests/loaders)
CHECKED_PSYCOPG = "3.3.6"

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


def install() -> bool:
    """Make psycopg dump lists with :class:`FastListDumper`; False (and psycopg's own) on another version."""
    installed = version("psycopg")
    if installed != CHECKED_PSYCOPG:
        LOGGER.warning(
            "psycopg %s is installed, the fast path was checked against %s: running psycopg's own array dumper",
            installed,
            CHECKED_PSYCOPG,
        )
        return False
    psycopg.adapters.register_dumper(list, FastListDumper)
    return True


def main() -> None:
    """The ``target-postgres-fastpath`` command: target-postgres's, with the fast path installed."""
    from target_postgres.target import TargetPostgres

    install()
    TargetPostgres.cli()
