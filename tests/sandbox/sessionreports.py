"""Fudo PAM API v2: reports (vendor-docs/fudo-pam-api-v2-reports.txt and the
Fudo section of API-CONTRACT.md).

- Auth: ``Authorization: <token>`` (the raw token, no scheme); 401 otherwise.
- ``GET /api/v2/report``, ``/api/v2/report/defined``,
  ``/api/v2/report/subscription``: ``{"result": "success", "<model>": [...]}``
  with ``filter=<field>.<op>(<value>)[,...]`` (the operators the document
  shows: ge, le, in, iin, isnull; ``!`` negates; a bare field is true; any
  other operator is a 400), ``order=<field>`` or ``!<field>`` (default: id),
  ``limit`` (default 100, at most 1000) and ``offset``. The order is by that
  one field only: records sharing its value come in a different order on
  every request (``shuffle_ties``), as a database without a tie-breaker may
  serve them. Errors: ``{"result": "error", "error": "..."}`` with 4xx/5xx.
- ``GET /api/v2/report/<id>/csv`` (also ``html``, ``pdf``): the report, the
  CSV streamed in chunks; 409 while the report is not ready.
- ``DELETE /api/v2/report/<id>``, ``/api/v2/report/defined/<id>``,
  ``/api/v2/report/subscription/<id>`` (documented; also the admin action
  ``delete`` with ``{"stream", "id"}``): the entry is gone from its list (a
  report's content answers 404).
- Test hooks outside the vendor's API, under ``/_test/``: ``html`` (a 200
  login page, as a captive proxy answers), ``html502`` (a proxy's 502 page),
  ``not-envelope`` (200 JSON of another shape), ``error200`` (200 with
  ``result: error``). Each accepts any path suffix.

Options besides seed/scale/days: ``definitions`` and ``subscriptions``
(how many custom ones), ``rows_per_report`` (every report's CSV rows; default
2 to 7 by report), ``limit_cap`` (serve at most that many per page whatever
``limit`` asks, as an appliance with a lower maximum might), ``token``,
``shuffle_ties`` (default true; false keeps ties in index order).

Everything is generated from an index and the seed: reports' times come in
pairs (two reports share each modified_at, so paging must handle ties), one
report in ten is still generating, CSV rows are computed per row, so a
million-row report or 100,000 reports cost no memory. Times are integers of
microseconds internally, so filters compare exactly. Some records of every
list carry attributes the document does not name (``retention_locked`` and
``undocumented_*`` keys), as a newer appliance may send.

``advance(new=4, finished=2, finished_in_place=1)``: ``new`` reports,
``finished`` reports that finished generating since with their modified_at
moved to now, and ``finished_in_place`` that finished generating WITHOUT any
change of modified_at (the document does not promise that it moves), a new and
a changed definition and subscription. ``advance(new=0, finished=0,
finished_in_place=0, delete=[<report id>...])`` deletes reports as the
documented DELETE does.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import io
import itertools
import random
import re
import typing as t

from tests.sandbox.core import Request, Response, VendorApp

US = 1_000_000
DAY_US = 86_400 * US
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
REPORT_ID_BASE = 5620492334958379016
DEFINED_ID_BASE = 9124292845052624900
SUBSCRIPTION_ID_BASE = 9124292845052625900
USER_IDS = ["1224979098644774913", "1224979098644774914", "1224979098644774915", "1224979098644774916"]
API_USER = USER_IDS[0]
PERIODS = ["day", "week", "month", "quarter", "year"]
TAP_DEFAULT_START_DAYS = 30

PREDEFINED = [
    ("5", "System report", "system"),
    ("6", "Account access report", "account_access"),
    ("7", "Safe access report", "safe_access"),
    ("8", "Server access report", "server_access"),
    ("9", "Session approvals by user", "session_approvals"),
    ("10", "Session sharing invites by user", "session_sharing"),
    ("11", "Session summary", "session_summary"),
    ("12", "Sessions by server report", "sessions_by_server"),
    ("13", "User access report", "user_access"),
    ("14", "User activity report", "user_activity"),
    ("15", "User privilege report", "user_privilege"),
    ("16", "User report", "user"),
]

# CSV shapes per defined report: the columns differ per report type.
SHAPES = {
    "system": ["Metric", "Value", "Comment"],
    "sessions": ["Session ID", "User", "Server", "Protocol", "Started", "Finished", "Duration [s]", "Description"],
    "access": ["User", "Account", "Safe", "Server", "Access granted", "Last access"],
    "users": ["Login", "Full name", "Email", "Role", "Blocked", "Last login"],
}
SHAPE_OF = {"5": "system", "6": "access", "7": "access", "8": "access", "13": "access",
            "15": "users", "16": "users"}  # others: sessions
NAMES = ["Anna Kowalska", "Zoë Ødegaard, Jr.", "John \"JJ\" Smith", "Li Wei", "Marta Nowak"]
SERVERS = ["db-01.corp", "web-02.corp", "jump, legacy", "win-ad-01"]
PROTOCOLS = ["ssh", "rdp", "vnc", "http", "mysql"]
COMMANDS = [
    "sudo systemctl restart nginx",
    'tail -f /var/log/auth.log, then "exit"\nlogout',
    "Get-ADUser -Filter *",
    "SELECT * FROM users;",
    "line one\r\nline two, with comma",
]

_TERM = re.compile(r"^(!)?([A-Za-z_][A-Za-z0-9_]*)(?:\.([a-z]+)\((.*)\))?$", re.S)
_TIME_FIELDS = {"created_at", "modified_at", "generated_at"}


class App(VendorApp):
    name = "sessionreports"

    def __init__(
        self,
        *,
        seed: int = 1,
        scale: int = 240,
        days: int = 45,
        definitions: int = 8,
        subscriptions: int = 24,
        rows_per_report: int | None = None,
        token: str = "sandbox-sessionreports-token",
        today: str | None = None,
        limit_cap: int | None = None,
        shuffle_ties: bool = True,
        start_date: str | None = None,
    ) -> None:
        self.seed = seed
        #: the start_date of the syncs whose counts info() gives (ISO 8601; None: the tap's
        #: default, midnight UTC 30 days before the day of the call, read from the wall clock)
        self.start_date = start_date
        self.shuffle_ties = shuffle_ties
        self._tie_random = random.Random(seed)
        self.limit_cap = limit_cap  # an appliance that silently serves fewer than `limit`
        self.token = token
        self.days = days
        self.rows_per_report = rows_per_report
        now = dt.datetime.now(dt.timezone.utc)
        self.today = dt.date.fromisoformat(today) if today else now.date()
        first_day = self.today - dt.timedelta(days=days - 1)
        self.start_us = _us(dt.datetime.combine(first_day, dt.time(), dt.timezone.utc))
        self.end_us = _us(now) if not today else self.start_us + days * DAY_US
        self.install_us = self.start_us - 400 * DAY_US
        self.base_reports = scale
        pairs = max((scale + 1) // 2, 1)
        self._pair_step = max((self.end_us - self.start_us - 60 * US) // pairs, 2)
        self.extra_reports: list[int] = []  # modified_at of reports added by advance()
        self.report_changed: dict[int, int] = {}  # index -> new modified_at
        self.ready_in_place: set[int] = set()  # finished generating, modified_at unchanged
        self.deleted_reports: set[int] = set()  # indexes of reports deleted (DELETE /api/v2/report/<id>)
        self._order: list[tuple[int, int]] | None = None  # (modified_at, index) sorted
        self.custom_definitions = definitions
        self.definition_changes: dict[int, int] = {}  # index -> new modified_at
        self.subscriptions = subscriptions
        self.subscription_changes: dict[int, int] = {}
        self.deleted: set[tuple[str, str]] = set()  # (stream, id) removed by delete()

    # ============================================================ data: reports
    @property
    def report_count(self) -> int:
        return self.base_reports + len(self.extra_reports)

    def report_modified(self, i: int) -> int:
        if i in self.report_changed:
            return self.report_changed[i]
        if i < self.base_reports:
            return self.start_us + (i // 2) * self._pair_step + self._pair_step // 2
        return self.extra_reports[i - self.base_reports]

    def report_ready(self, i: int) -> bool:
        return i % 10 != 7 or i in self.report_changed or i in self.ready_in_place

    def report_exists(self, i: int) -> bool:
        return 0 <= i < self.report_count and i not in self.deleted_reports

    def report_rows(self, i: int) -> int:
        if self.rows_per_report is not None:
            return self.rows_per_report
        return 2 + (i * 7 + self.seed) % 6

    def report_defined_id(self, i: int) -> str:
        return PREDEFINED[(i + self.seed) % len(PREDEFINED)][0]

    def report(self, i: int) -> dict:
        modified = self.report_modified(i)
        created = (self.start_us + (i // 2) * self._pair_step if i < self.base_reports
                   else modified) - (i % 7 + 1) * 60 * US
        ready = self.report_ready(i)
        defined = self.report_defined_id(i)
        title = next(title for pid, title, _ in PREDEFINED if pid == defined)
        report = {
            "id": str(REPORT_ID_BASE + i),
            "title": f"{title} #{i + 1}",
            "defined_report_id": defined,
            "content": None,
            "generated_at": _iso(modified - 30 * US, offset_hours=1) if ready else None,
            "user_id": USER_IDS[i % len(USER_IDS)],
            "query_filter": f"created_at.ge({_iso(created - DAY_US)}),subprotocol.iin(ssh)",
            "query_order": "!finished_at",
            "status": "ready" if ready else "generating",
            "created_at": _iso(created),
            "modified_at": _iso(modified),
            "is_ready": ready,
        }
        if i % 5 == 0:
            report["retention_locked"] = True  # an attribute the document does not name
        if i % 4 == 3:
            report["undocumented_export_formats"] = ["csv", "html", "pdf"]
        return report

    def _report_order(self) -> list[tuple[int, int]]:
        if self._order is None:
            order = [(self.report_modified(i), i) for i in range(self.report_count)
                     if i not in self.deleted_reports]
            order.sort()
            self._order = order
        return self._order

    # ============================================================ data: definitions
    def definition(self, k: int) -> dict:
        subscribed_ids = {self.subscription(s)["defined_report_id"]: self.subscription(s)["user_id"]
                          for s in range(self.subscriptions)}
        if k < len(PREDEFINED):
            def_id, title, kind = PREDEFINED[k]
            created = modified = self.install_us
            predefined, user = True, None
            query_filter, query_order = None, None
        else:
            c = k - len(PREDEFINED)
            def_id = str(DEFINED_ID_BASE + c)
            kind = PREDEFINED[c % len(PREDEFINED)][2]
            title = f"Custom filter {c + 1}"
            created = self.start_us + (c * 5 + 1) * (self.end_us - self.start_us) // (self.custom_definitions * 5 + 5)
            modified = created + 3600 * US
            predefined, user = False, USER_IDS[c % len(USER_IDS)]
            query_filter = "subprotocol.iin(rdp),!finished_at.isnull(),status.iin(approved)"
            query_order = "!finished_at"
        if k in self.definition_changes:
            modified = self.definition_changes[k]
            title += " (edited)"
        definition = {
            "id": def_id,
            "title": title,
            "type": kind,
            "query_filter": query_filter,
            "query_order": query_order,
            "user_id": user,
            "created_at": _iso(created),
            "modified_at": _iso(modified),
            "predefined": predefined,
            "has_subscription": def_id in subscribed_ids,
            "subscribed": subscribed_ids.get(def_id) == API_USER,
        }
        if k % 3 == 0:
            definition["undocumented_category"] = "compliance" if predefined else "custom"
        return definition

    @property
    def definition_count(self) -> int:
        return len(PREDEFINED) + self.custom_definitions

    # ============================================================ data: subscriptions
    def subscription(self, k: int) -> dict:
        definitions = len(PREDEFINED) + min(self.custom_definitions, 3)
        d = (k * 5 + self.seed) % definitions
        def_id = PREDEFINED[d][0] if d < len(PREDEFINED) else str(DEFINED_ID_BASE + d - len(PREDEFINED))
        # spread from 60 days before the window (older than any start_date) to now
        first = self.start_us - 60 * DAY_US
        created = first + (k + 1) * (self.end_us - first) // (self.subscriptions + 2)
        modified = self.subscription_changes.get(k, created + 600 * US)
        user = USER_IDS[k % len(USER_IDS)]
        subscription = {
            "id": str(SUBSCRIPTION_ID_BASE + k),
            "defined_report_id": def_id,
            "user_id": user,
            "period": PERIODS[k % len(PERIODS)],
            "created_by": user if k % 3 else API_USER,
            "created_at": _iso(created),
            "modified_at": _iso(modified),
            "active": (k % 5 != 4) != (k in self.subscription_changes),
        }
        if k % 3 == 1:
            subscription["undocumented_delivery"] = {"channel": "email", "format": "pdf"}
        return subscription

    # ============================================================ time
    def advance(self, new: int = 4, finished: int = 2, finished_in_place: int = 1,
                delete: t.Iterable[str] = (), **_: t.Any) -> dict:
        """``new`` reports modified now; ``finished`` reports that were still
        generating finish (modified now, ready); ``finished_in_place`` more
        finish with their modified_at unchanged; the reports of ``delete``
        (ids) are deleted; one definition and one subscription are added and
        one of each is edited (none when nothing else is asked for)."""
        now = _us(dt.datetime.now(dt.timezone.utc))
        now = max(now, self._latest_us() + US)
        first_new = self.report_count
        for n in range(new):
            self.extra_reports.append(now + n)
        cutoff = self._default_cutoff_us()
        pending = [i for mod, i in self._report_order()
                   if not self.report_ready(i) and mod >= cutoff and i < first_new]
        done = pending[:finished]
        for n, i in enumerate(done):
            self.report_changed[i] = now + new + n
        in_place = pending[finished:finished + finished_in_place]
        self.ready_in_place.update(in_place)
        deleted = [self.delete_report(int(report_id) - REPORT_ID_BASE) for report_id in delete]
        self._order = None
        changes = {"new_reports": [str(REPORT_ID_BASE + i) for i in range(first_new, self.report_count)],
                   "finished_reports": [str(REPORT_ID_BASE + i) for i in done],
                   "finished_in_place_reports": [str(REPORT_ID_BASE + i) for i in in_place],
                   "deleted_reports": [str(REPORT_ID_BASE + i) for i in deleted if i is not None]}
        if not (new or finished or finished_in_place) and deleted:
            return changes
        self.definition_changes[len(PREDEFINED)] = now
        self.custom_definitions += 1
        self.definition_changes[self.definition_count - 1] = now + 1
        self.subscription_changes[0] = now
        self.subscriptions += 1
        self.subscription_changes[self.subscriptions - 1] = now + 1
        return changes

    def delete_report(self, i: int) -> int | None:
        """Delete report ``i`` (None when there is no such report)."""
        if not self.report_exists(i):
            return None
        self.deleted_reports.add(i)
        self._order = None
        return i

    def delete(self, stream: str, id: str) -> dict:
        """A report, report definition or subscription is deleted: lists no longer show it."""
        if stream == "reports":
            if self.delete_report(int(id) - REPORT_ID_BASE) is None:
                raise ValueError(f"no reports entry {id}")
            return {"deleted": [stream, str(id)]}
        entries = {"defined_reports": lambda: [self.definition(k) for k in range(self.definition_count)],
                   "report_subscriptions": lambda: [self.subscription(k) for k in range(self.subscriptions)]}
        if stream not in entries or str(id) not in {e["id"] for e in entries[stream]()}:
            raise ValueError(f"no {stream} entry {id}")
        self.deleted.add((stream, str(id)))
        return {"deleted": [stream, str(id)]}

    def _deleted_count(self, stream: str) -> int:
        return sum(s == stream for s, _ in self.deleted)

    def _latest_us(self) -> int:
        order = self._report_order()
        return order[-1][0] if order else self.start_us

    def _default_cutoff_us(self) -> int:
        """The syncs' start_date (``start_date``), else the tap's default: midnight UTC, 30 days ago."""
        if self.start_date:
            return _us(dt.datetime.fromisoformat(self.start_date.replace("Z", "+00:00")))
        today = dt.datetime.now(dt.timezone.utc).date()
        return _us(dt.datetime.combine(today - dt.timedelta(days=TAP_DEFAULT_START_DAYS), dt.time(), dt.timezone.utc))

    def info(self) -> dict:
        order = self._report_order()
        cutoff = self._default_cutoff_us()
        in_window = [i for _, i in order[bisect.bisect_left(order, (cutoff, -1)):]]
        ready = [i for i in in_window if self.report_ready(i)]
        return {
            "credentials": {"api_token": self.token},
            "expected_counts": {
                "reports": len(in_window),
                "defined_reports": self.definition_count - self._deleted_count("defined_reports"),
                "report_subscriptions": self.subscriptions - self._deleted_count("report_subscriptions"),
                "report_rows": sum(self.report_rows(i) for i in ready),
            },
            "reports_total": self.report_count - len(self.deleted_reports),
            "ready_reports_in_window": len(ready),
            "not_ready_reports_in_window": len(in_window) - len(ready),
            "default_cutoff": _iso(cutoff),
            "first_report_id": str(REPORT_ID_BASE),
        }

    # ============================================================ http
    def error(self, status: int, message: str) -> Response:
        return Response.json({"result": "error", "error": message}, status=status)

    def malformed_body(self) -> tuple[bytes, str]:
        return b'{"result": "success", "report": [{"id": "5620492334958379016", "tit', "application/json"

    def handle(self, request: Request) -> Response:
        if request.path.startswith("/_test/"):
            return self._test_hook(request.path)
        if request.headers.get("Authorization") != self.token:
            return self.error(401, "Authentication failed: invalid or missing API token")
        path = request.path.rstrip("/")
        if request.method == "DELETE":  # the documented DELETE of each model
            match = re.fullmatch(r"/api/v2/report(?:/(defined|subscription))?/(\d+)", path)
            if not match:
                return self.error(405, "Method DELETE not allowed here")
            stream = {None: "reports", "defined": "defined_reports", "subscription": "report_subscriptions"}
            try:
                self.delete(stream[match.group(1)], match.group(2))
            except ValueError:
                return self.error(404, f"Not found: {request.path}")
            return Response.json({"result": "success"})
        if request.method != "GET":
            return self.error(405, f"Method {request.method} not allowed here")
        if path == "/api/v2/report":
            return self._list(request, "report", self._reports_page)
        if path == "/api/v2/report/defined":
            rows = [r for k in range(self.definition_count)
                    if ("defined_reports", (r := self.definition(k))["id"]) not in self.deleted]
            return self._list(request, "defined_report", _materialized(rows, self._tie_shuffler()))
        if path == "/api/v2/report/subscription":
            rows = [r for k in range(self.subscriptions)
                    if ("report_subscriptions", (r := self.subscription(k))["id"]) not in self.deleted]
            return self._list(request, "defined_report_subscription", _materialized(rows, self._tie_shuffler()))
        match = re.fullmatch(r"/api/v2/report/(\d+)/(csv|html|pdf)", path)
        if match:
            return self._content(int(match.group(1)), match.group(2))
        return self.error(404, f"Not found: {request.path}")

    def _test_hook(self, path: str) -> Response:
        hook = path[len("/_test/"):].split("/", 1)[0]
        if hook == "html":
            return Response(200, b"<!DOCTYPE html><html><head><title>Sign in - Corporate Proxy</title>"
                                 b"</head><body><form>...</form></body></html>", "text/html; charset=utf-8")
        if hook == "html502":
            return Response(502, b"<html><head><title>502 Bad Gateway</title></head><body><center>"
                                 b"<h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
                            "text/html")
        if hook == "not-envelope":
            return Response.json({"data": [{"id": "1"}], "total": 1})
        if hook == "error200":
            return Response.json({"result": "error", "error": "Session expired, log in again"})
        return self.error(404, f"Not found: {path}")

    def _list(self, request: Request, model: str, page_fn: t.Callable) -> Response:
        try:
            limit = int(request.param("limit", str(DEFAULT_LIMIT)))
            offset = int(request.param("offset", "0"))
        except ValueError:
            return self.error(400, "limit and offset must be integers")
        if not 1 <= limit <= MAX_LIMIT or offset < 0:
            return self.error(400, f"limit must be 1..{MAX_LIMIT} and offset 0 or more")
        if self.limit_cap:
            limit = min(limit, self.limit_cap)
        try:
            terms = parse_filter(request.param("filter") or "")
            order = request.param("order") or "id"
            desc = order.startswith("!")
            order_field = order.lstrip("!")
            page = page_fn(terms, order_field, desc, offset, limit)
        except FilterError as exc:
            return self.error(400, str(exc))
        return Response.json({"result": "success", model: page})

    def _reports_page(self, terms: list, order_field: str, desc: bool, offset: int, limit: int) -> list[dict]:
        for term in terms:
            check_term(term, self.report(0) if self.report_count else {})
        range_terms = [tm for tm in terms if tm[1] == "modified_at" and tm[2] in {"ge", "le"} and not tm[0]]
        if order_field == "modified_at" and len(range_terms) == len(terms):
            # The fast path a tap uses: a bisected range of the modified_at order.
            order = self._report_order()
            lo, hi = 0, len(order)
            for _, _, op, value in range_terms:
                bound = _parse_time(value)
                if op == "ge":
                    lo = max(lo, bisect.bisect_left(order, (bound, -1)))
                else:
                    hi = min(hi, bisect.bisect_left(order, (bound + 1, -1)))
            if desc:
                start, stop = max(hi - offset - limit, lo), max(hi - offset, lo)
                chosen = list(reversed(self._ties_shuffled(order, start, stop)))
            else:
                chosen = self._ties_shuffled(order, lo + offset, min(lo + offset + limit, hi))
            return [self.report(i) for _, i in chosen]
        indexes: t.Iterable[int] = range(self.report_count)
        for negate, field, op, value in terms:
            if field == "id" and op == "in" and not negate:
                # by id (a tap re-checking reports): only those are built
                wanted = {int(v) - REPORT_ID_BASE for v in (value or "").split(",") if v.strip().isdigit()}
                indexes = sorted(i for i in wanted if 0 <= i < self.report_count)
        rows = [self.report(i) for i in indexes if i not in self.deleted_reports]
        return _materialized(rows, self._tie_shuffler())(terms, order_field, desc, offset, limit)

    def _tie_shuffler(self) -> random.Random | None:
        return self._tie_random if self.shuffle_ties else None

    def _ties_shuffled(self, order: list[tuple[int, int]], start: int, stop: int) -> list[tuple[int, int]]:
        """``order[start:stop]`` as this request sees it: the records sharing a
        modified_at in another order each time (the groups cut by the page's
        edges included)."""
        if not self.shuffle_ties or start >= stop:
            return order[start:stop]
        lo, hi = start, stop
        while lo > 0 and order[lo - 1][0] == order[start][0]:
            lo -= 1
        while hi < len(order) and order[hi][0] == order[stop - 1][0]:
            hi += 1
        block = []
        for _, group in itertools.groupby(order[lo:hi], key=lambda item: item[0]):
            members = list(group)
            self._tie_random.shuffle(members)
            block.extend(members)
        return block[start - lo: stop - lo]

    def _content(self, report_id: int, ext: str) -> Response:
        i = report_id - REPORT_ID_BASE
        if not self.report_exists(i):
            return self.error(404, f"Report {report_id} not found")
        if not self.report_ready(i):
            return self.error(409, f"Report {report_id} is not ready")
        if ext == "csv":
            return Response(200, self._csv_chunks(i), "text/csv; charset=utf-8",
                            {"Content-Disposition": f'attachment; filename="report-{report_id}.csv"'})
        if ext == "html":
            return Response(200, f"<html><body><h1>Report {report_id}</h1></body></html>".encode(), "text/html")
        return Response(200, b"%PDF-1.4\n% sandbox report\n%%EOF\n", "application/pdf")

    def _csv_chunks(self, i: int) -> t.Iterator[bytes]:
        shape = SHAPE_OF.get(self.report_defined_id(i), "sessions")
        make_row = getattr(self, f"_row_{shape}")
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(SHAPES[shape])
        total = self.report_rows(i)
        base = self.report_modified(i) // US
        for r in range(total):
            writer.writerow(make_row(i, r, base))
            if r % 2000 == 1999:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue().encode()

    # one CSV row per shape, from (report, row) by arithmetic: fast at 1M rows
    def _row_sessions(self, i: int, r: int, base: int) -> list:
        n = i * 31 + r * 7 + self.seed
        start = base - 3600 + r
        return [str(8000000 + i * 1000 + r), NAMES[n % 5], SERVERS[n % 4], PROTOCOLS[n % 5],
                _stamp(start), _stamp(start + n % 900), str(n % 900), COMMANDS[n % 5]]

    def _row_access(self, i: int, r: int, base: int) -> list:
        n = i * 17 + r * 3 + self.seed
        return [NAMES[n % 5], f"acct-{n % 40}", f"Safe {n % 6}", SERVERS[n % 4],
                "yes" if n % 3 else "no", _stamp(base - r * 60)]

    def _row_users(self, i: int, r: int, base: int) -> list:
        n = i * 13 + r + self.seed
        return [f"user{r:05d}", NAMES[n % 5], f"user{r:05d}@example.com", ["admin", "operator", "user"][n % 3],
                "false" if n % 7 else "true", _stamp(base - r * 30)]

    def _row_system(self, i: int, r: int, base: int) -> list:
        n = i + r + self.seed
        return [f"metric_{r}", str(n * 37 % 1000), "ok" if n % 4 else "warning, check disk\nusage"]


# ================================================================ filter syntax
class FilterError(ValueError):
    pass


def split_terms(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise FilterError(f"Invalid filter: unbalanced parenthesis in {text!r}")
        if char == "," and depth == 0:
            terms.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise FilterError(f"Invalid filter: unbalanced parenthesis in {text!r}")
    terms.append("".join(current))
    return [term.strip() for term in terms if term.strip()]


def parse_filter(text: str) -> list[tuple[bool, str, str | None, str | None]]:
    terms = []
    for term in split_terms(text):
        match = _TERM.match(term)
        if not match:
            raise FilterError(f"Invalid filter term {term!r}")
        negate, field, op, value = match.groups()
        if op is not None and op not in {"ge", "le", "in", "iin", "isnull"}:
            raise FilterError(f"Invalid filter operator {op!r} in {term!r}")
        if op in {"ge", "le"} and field in _TIME_FIELDS:
            _parse_time(value or "")
        terms.append((bool(negate), field, op, value))
    return terms


def check_term(term: tuple, sample: dict) -> None:
    if sample and term[1] not in sample:
        raise FilterError(f"Invalid filter: unknown field {term[1]!r}")


def matches(record: dict, term: tuple) -> bool:
    negate, field, op, value = term
    actual = record.get(field)
    if op is None:
        result = bool(actual)
    elif op == "isnull":
        result = actual is None
    elif actual is None:
        result = False
    elif op in {"in", "iin"}:
        options = [v.strip() for v in (value or "").split(",")]
        if op == "iin":
            options, actual = [o.lower() for o in options], str(actual).lower()
        result = str(actual) in options
    else:
        if field in _TIME_FIELDS:
            left, right = _parse_time(actual), _parse_time(value or "")
        else:
            left, right = str(actual).lower() if isinstance(actual, bool) else str(actual), value
        result = left >= right if op == "ge" else left <= right
    return result != negate


def _materialized(rows: list[dict], shuffler: random.Random | None = None) -> t.Callable:
    """Filter, order and page a small list held whole; with ``shuffler``, ties
    in the order come in a random order when the list is filtered by time (a
    first read, unfiltered, keeps them in index order)."""
    def page(terms: list, order_field: str, desc: bool, offset: int, limit: int) -> list[dict]:
        for term in terms:
            check_term(term, rows[0] if rows else {})
        if rows and order_field not in rows[0]:
            raise FilterError(f"Invalid order field {order_field!r}")
        kept = [row for row in rows if all(matches(row, term) for term in terms)]

        def key(row: dict) -> tuple:
            value = row.get(order_field)
            if order_field in _TIME_FIELDS and value is not None:
                value = _parse_time(value)
            elif order_field == "id":
                value = int(value)
            return (value is None, value if value is not None else 0)  # nulls last

        if shuffler is not None and any(term[1] in _TIME_FIELDS for term in terms):
            shuffler.shuffle(kept)
        kept.sort(key=key, reverse=desc)
        return kept[offset: offset + limit]
    return page


# ================================================================ time helpers
def _us(value: dt.datetime) -> int:
    return (value - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)


def _iso(us: int, offset_hours: int = 0) -> str:
    """Fudo-like timestamps: microseconds, UTC as Z (or a local offset)."""
    value = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(microseconds=us)
    if offset_hours:
        return value.astimezone(dt.timezone(dt.timedelta(hours=offset_hours))).isoformat(timespec="microseconds")
    return value.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def _parse_time(value: str) -> int:
    text = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        raise FilterError(f"Invalid date-time {value!r} in filter") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.timezone.utc)
    return _us(parsed)


def _stamp(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
