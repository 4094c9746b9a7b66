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
done by ``bytes.replace``: the same bytes (checked equal in tests/loaders).
Everything else (tables, types, COPY, upserts, ACTIVATE_VERSION, STATE,
logging) is target-postgres's own. Any other psycopg version than the one
this was checked against runs psycopg's own dumper.
"""

from __future__ import annotations

import logging
import re
import typing as t
from functools import cache
from importlib.metadata import version

import psycopg
from psycopg.types.array import ListDumper
from typing_extensions import override

# the version whose ListDumper.dump FastListDumper was checked equal to (tests/loaders)
CHECKED_PSYCOPG = "3.3.6"

LOGGER = logging.getLogger("target-postgres")


@cache
def _needs_quotes(delimiter: bytes) -> re.Pattern[bytes]:
    """When an element needs double quotes in an array literal: psycopg's rule.

    Empty, or holding a curly brace, the delimiter, a double quote, a
    backslash or white space, or the word NULL
    (https://www.postgresql.org/docs/current/arrays.html#ARRAYS-IO)."""
    return re.compile(rb"""(?xi)
          ^$
        | ["{}%s\\\s]
        | ^null$
        """ % re.escape(delimiter))


def _quoted(element: bytes) -> bytes:
    """``element`` in double quotes, its backslashes and double quotes escaped by a backslash."""
    return b'"' + element.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


class FastListDumper(ListDumper):
    """psycopg's text dumper of a Python list, its escaping without a regular-expression template."""

    @override
    def dump(self, obj: list[t.Any]) -> bytes:
        tokens: list[bytes] = []
        needs_quotes = _needs_quotes(self.delimiter).search
        delimiter = self.delimiter

        def dump_list(items: list[t.Any]) -> None:
            if not items:
                tokens.append(b"{}")
                return
            tokens.append(b"{")
            for item in items:
                if isinstance(item, list):
                    dump_list(item)
                elif item is None or (dumped := self._dump_item(item)) is None:
                    tokens.append(b"NULL")
                else:
                    element = bytes(dumped)
                    tokens.append(_quoted(element) if needs_quotes(element) else element)
                tokens.append(delimiter)
            tokens[-1] = b"}"

        dump_list(obj)
        return b"".join(tokens)


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
