"""Controlio API 1.1 (vendor-docs/controlio-api-1.1.txt, API-CONTRACT.md).

- Auth: ``Authorization: Bearer <token>``; 401 ``{"error": ...}`` otherwise.
- Every list and report answers ``{"data": [...]}``; errors ``{"error": "..."}``.
- Collections ``/api/v1/<name>``, the audit log and most reports: ``limit``
  (default 10000, at most 10000) and ``offset``; ``sort_direction`` defaults
  to ``desc``. Collections are ordered by ``sort_by`` (a field of the rows;
  400 otherwise), by default ``updated_at`` (the document names no default).
- ``detailedActivities`` and ``usersActivitiesTimeline``: no offset; rows in
  ``(start_time, user_id, computer_id)`` order, the next chunk after
  ``prev=<start_time>,<user_id>,<computer_id>``.
- Report dates ``start_time``/``end_time``: ``YYYY-MM-DD``, both inclusive.
  ``timelineSummary`` and ``timelineRaw`` take one ``start_time`` day
  (required), their ``/{user_id}`` variants a required range; limit default 25.
  ``interval`` is 5, 15, 30 or 60 (400 otherwise).
- Report filters as documented: ``users``/``departments``, except
  ``workloadByDays``, which takes one ``user_id``. Every endpoint checks the
  filters it documents (``DOCUMENTED_FILTERS``: types, allowed values) and
  answers 400 for a filter the document gives only to other endpoints. The
  filters narrow the rows where the generated rows carry the field
  (``users``, ``activities`` on the raw reports, ``level`` on the activities
  report, the keyword search ``string_to_match``, the audit log's
  ``object_id``/``ip``/...); the others (``weekdays``, ``hours``,
  ``computers``, ``categories``, ``apply_timezone``: the account runs at UTC)
  are checked and recorded only.
- Report rows carry the ids their filters name and, when time-based,
  ``start_time``/``end_time`` (API-CONTRACT.md); the ``..ByDays`` rows are
  time-based: one row per day from its ``start_time`` to its ``end_time``,
  without a ``date`` unless ``by_days_date``. Rows also carry fields no client
  declares (``duration``, ``title``, ...). With ``sparse_rows`` they leave
  out what a client cannot count on: event rows have no ``computer_id`` (and
  two of them share a user and a ``start_time``), audit-log entries no ``id``,
  categories-report rows no ``category_id``, users-activities rows no
  ``activity_id``, and no row names a department. ``activitySessions`` with
  ``aggregate_by_user=true`` answers rows without ``computer_id``. Some rows
  of every endpoint carry a field no document names, ``undocumented_<what>``
  (an object, the same each time the row is served).
- Date-times are written like the document's samples, in UTC with
  microseconds (``2020-10-22T20:53:11.877501Z``); the raw rows' microseconds
  are not zero, so a ``prev`` cursor must carry ``start_time`` exactly.

The raw activity rows (``scale`` of them, spread over ``days`` up to now) are
generated from their index, so millions cost no memory; rows added by
``advance()`` are kept in a small sorted list and merged in. Everything else
is a few rows per day, generated from (report, day, index).
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
import typing as t
import zlib

from tests.sandbox.core import Request, Response, VendorApp

MAX_LIMIT = 10000
UTC = dt.timezone.utc
ROWS_PER_SLOT = 3  # raw rows sharing one start_time

# report path -> (kind, name); see _report_rows
S = "/api/v1/statistics/"
REPORTS = {
    S + "activitySessions": ("event", "activity_sessions"),
    S + "activities": ("agg_activity", "activities_report"),
    S + "alerts": ("event", "alerts"),
    S + "captions": ("captions", "captions"),
    S + "categories": ("agg_category", "categories_report"),
    S + "detailedFiles": ("event", "detailed_files"),
    S + "emails": ("email", "emails"),
    S + "keystrokes": ("event", "keystrokes"),
    S + "printing": ("event", "printing"),
    S + "productivity": ("agg_user", "productivity"),
    S + "searches": ("event", "searches"),
    S + "logons": ("event", "logons"),
    S + "users": ("agg_user", "users_productivity"),
    S + "workloadByUsers": ("agg_user", "workload_by_users"),
    S + "workloadByDays": ("by_days", "workload_by_days"),
    S + "workloadByDepartments": ("agg_department", "workload_by_departments"),
    S + "operationsByUsers": ("agg_user", "operations_by_users"),
    S + "operationsByDays": ("by_days", "operations_by_days"),
    S + "multitaskingByUsers": ("agg_user", "multitasking_by_users"),
    S + "multitaskingByDays": ("by_days", "multitasking_by_days"),
    S + "categoriesDistributionByUsers": ("agg_user", "categories_distribution_by_users"),
    S + "timelineSummary": ("agg_user", "timeline_summary"),
    S + "timelineRaw": ("event", "timeline_raw"),
}
CURSOR_REPORTS = {
    S + "detailedActivities": "detailed_activities",
    S + "usersActivitiesTimeline": "users_activities_timeline",
}
ONE_DAY_REPORTS = {S + "timelineSummary", S + "timelineRaw"}
NO_PAGING_REPORTS = {S + "productivity"}
SMALL_DEFAULT_LIMIT = {S + "timelineSummary", S + "timelineRaw"}
USER_ID_REPORTS = {S + "workloadByDays"}  # one `user_id`, not `users`, as documented
INTERVALS = (5, 15, 30, 60)

# The filters each endpoint documents (besides dates, paging and sorting). A
# filter the document gives other endpoints but not this one answers 400, so
# a client that sends a filter where it does not belong is caught.
WHO = frozenset({"users", "departments"})
SEARCH = "string_to_match"  # the keyword search (the operations/multitasking render lost its name)
BREAKDOWN = WHO | {"weekdays", "hours", "computers", "activities", "activity_type", "level", "categories", SEARCH}
AUDIT_PARAMS = frozenset({"object_types", "api_types", "actions", "logins", "emails", "object_id",
                          "apply_timezone", "ip"})
DOCUMENTED_FILTERS: dict[str, frozenset[str]] = {
    "/api/v1/activities": frozenset({"ids", "level", "parent_id", SEARCH}),
    "/api/v1/categories": frozenset({"ids", "level", "parent_id", SEARCH}),
    "/api/v1/computers": frozenset({"ids", SEARCH}),
    "/api/v1/departments": frozenset({"ids", "parent_id", SEARCH}),
    "/api/v1/logins": frozenset({"ids", SEARCH}),
    "/api/v1/rules": frozenset({"ids", SEARCH}),
    "/api/v1/users": frozenset({"ids", "parent_id", SEARCH}),
    "/api/v1/audit_log": AUDIT_PARAMS,
    S + "activitySessions": WHO | {"aggregate_by_user"},
    S + "activities": WHO | {SEARCH, "activity_type", "level"},
    S + "alerts": WHO | {SEARCH},
    S + "captions": WHO | {"activity_id"},
    S + "categories": WHO | {SEARCH, "activity_type"},
    S + "detailedFiles": WHO | {SEARCH, "removable_only"},
    S + "detailedActivities": WHO | {"activities", SEARCH, "activity_type"},
    S + "emails": WHO | {SEARCH},
    S + "keystrokes": WHO | {SEARCH, "activity_type"},
    S + "printing": WHO | {SEARCH},
    S + "productivity": WHO,
    S + "searches": WHO | {SEARCH},
    S + "logons": WHO,
    S + "usersActivitiesTimeline": WHO | {"activities", SEARCH, "activity_type"},
    S + "usersActivities": frozenset(),
    S + "users": WHO | {SEARCH},
    S + "workloadByUsers": WHO,
    S + "workloadByDays": frozenset({"user_id", "departments"}),
    S + "workloadByDepartments": WHO,
    S + "operationsByUsers": BREAKDOWN,
    S + "operationsByDays": BREAKDOWN,
    S + "multitaskingByUsers": BREAKDOWN,
    S + "multitaskingByDays": BREAKDOWN,
    S + "categoriesDistributionByUsers": BREAKDOWN - {"activities", "level", SEARCH},
    S + "timelineSummary": WHO | {"interval"},
    S + "timelineSummary/{user_id}": frozenset({"interval"}),
    S + "timelineRaw": WHO,
    S + "timelineRaw/{user_id}": frozenset(),
}
FILTER_PARAMS = frozenset().union(*DOCUMENTED_FILTERS.values())
#: integer filters: their allowed values (None: any integer) and whether a comma-separated list
INT_FILTERS: dict[str, tuple[range | None, bool]] = {
    "users": (None, True), "departments": (None, True), "ids": (None, True), "activities": (None, True),
    "computers": (None, True), "categories": (None, True), "logins": (range(1, 2**63), True),
    "weekdays": (range(7), True), "hours": (range(24), True), "level": (range(5), False),
    "activity_type": (range(3), False), "object_id": (range(1, 2**63), False), "user_id": (None, False),
    "activity_id": (None, False), "parent_id": (None, False),
}
BOOLEAN_FILTERS = frozenset({"aggregate_by_user", "removable_only", "apply_timezone"})
_OCTET = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4 = re.compile(rf"^({_OCTET}\.){{3}}{_OCTET}$")
COLLECTIONS = ("activities", "categories", "computers", "departments", "logins", "rules", "users")
EVENT_EXTRAS = {
    "activity_sessions": lambda h: {"duration": h % 3600, "idle": h % 120},
    "alerts": lambda h: {"rule_id": h % 4 + 1, "rule_name": f"rule {h % 4 + 1}", "severity": h % 3},
    "detailed_files": lambda h: {"file_name": f"report-{h % 97}.docx", "operation": ["copy", "move", "delete"][h % 3],
                                 "removable": h % 5 == 0},
    "keystrokes": lambda h: {"text": f"typed {h % 1000}", "application": "notepad.exe"},
    "printing": lambda h: {"printer": f"PRN-{h % 3}", "pages": h % 20 + 1, "document": f"doc{h % 50}.pdf"},
    "searches": lambda h: {"query": f"how to {h % 77}", "engine": ["google", "bing"][h % 2]},
    "logons": lambda h: {"logon_type": ["console", "rdp"][h % 2], "session_id": h % 9},
    "timeline_raw": lambda h: {"activity_id": h % 12 + 1, "active": h % 4 != 0},
    "captions": lambda h: {"caption": f"Window {h % 300}", "duration": h % 900},
}
AUDIT_ACTIONS = ["view", "create", "update", "delete", "logon", "export_csv"]
AUDIT_OBJECTS = ["login", "user", "department", "computer", "activity", "rule", "report"]


class BadRequest(Exception):
    pass


def _h(*parts: t.Any) -> int:
    """A cheap deterministic hash."""
    return zlib.crc32(repr(parts).encode())


EPOCH = dt.datetime(1970, 1, 1)
US = 1_000_000  # microseconds per second


def _iso_us(us: int) -> str:
    """A UTC date-time in microseconds since the epoch, written as the document does."""
    return (EPOCH + dt.timedelta(microseconds=us)).isoformat(timespec="microseconds") + "Z"


def _iso(ts: int, micros: int = 0) -> str:
    return _iso_us(ts * US + micros)


def _parse_us(value: str) -> int:
    """An ISO date-time as exact microseconds since the epoch (naive values are UTC)."""
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return (parsed - EPOCH) // dt.timedelta(microseconds=1)


def _undocumented(row: dict, what: str, *identity: t.Any) -> dict:
    """Adds a field no document names (``undocumented_*``), the same each time the row is served."""
    row[f"undocumented_{what}"] = {"source": what, "ref": _h("undocumented", what, *identity) % 10007}
    return row


def _day_ts(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), UTC).timestamp())


class App(VendorApp):
    name = "controlio"

    def __init__(
        self,
        *,
        seed: int = 1,
        scale: int = 2000,
        days: int = 30,
        users: int = 6,
        computers: int = 4,
        departments: int = 3,
        activities: int = 12,
        categories: int = 6,
        rules: int = 4,
        logins: int = 3,
        audit_per_day: int = 4,
        token: str = "sandbox-controlio-token",
        today: str | None = None,
        summary_per_interval: bool = False,
        by_days_date: bool = False,
        sparse_rows: bool = False,
    ) -> None:
        #: timeline summaries: one row per user and day (default) or, like a
        #: server that answers per `interval`, one row per user and interval
        self.summary_per_interval = summary_per_interval
        #: `..ByDays` rows carry a `date` besides their start_time/end_time
        self.by_days_date = by_days_date
        #: rows carry only the fields API-CONTRACT.md guarantees (module docstring)
        self.sparse_rows = sparse_rows
        self.seed = seed
        self.token = token
        self.n_users = max(users, ROWS_PER_SLOT)
        self.n_computers = computers
        self.n_departments = departments
        self.n_activities = activities
        self.n_categories = categories
        self.n_rules = rules
        self.n_logins = logins
        self.audit_per_day = audit_per_day
        self.days = days
        self.today = dt.date.fromisoformat(today) if today else dt.datetime.now(UTC).date()
        self.first_day = self.today - dt.timedelta(days=days - 1)
        # raw activity rows: `scale` rows in slots of ROWS_PER_SLOT sharing a start_time
        self.base_count = scale
        self._slots = max(-(-scale // ROWS_PER_SLOT), 1)
        self._start_ts = _day_ts(self.first_day)
        end = int(dt.datetime.now(UTC).timestamp()) - 60 if not today else self._start_ts + days * 86400
        self._step = max(end - self._start_ts, 1) / self._slots
        if self._step < 2:
            raise ValueError(f"scale {scale} is too large for {days} days: at most one raw slot every 2 s")
        self._start_us = self._start_ts * US
        self._step_us = self._step * US
        # raw row keys: (start_time in microseconds, user_id, computer_id)
        self.extra_keys: list[tuple[int, int, int]] = []  # rows added by advance(), sorted
        self.bonus: dict[dt.date, int] = {}  # extra event rows per day (advance)
        self.today_growth = 0
        self.changed_activity_names: dict[int, str] = {}
        self.advanced_at: str | None = None
        self.deleted: set[tuple[str, int]] = set()  # (collection, id) removed by delete()

    # ------------------------------------------------------------ collections
    def _stamp(self, kind: str, i: int) -> str:
        h = _h(self.seed, kind, i)
        return _iso(self._start_ts - 86400 * 200 + h % (86400 * 150), h % US)

    def collection(self, name: str) -> list[dict]:
        rows = [getattr(self, f"_{name}_row")(i) for i in range(1, self._count(name) + 1)
                if (name, i) not in self.deleted]
        return [_undocumented(r, name, r["id"]) if r["id"] % 2 else r for r in rows]

    def _count(self, name: str) -> int:
        return {
            "activities": self.n_activities, "categories": self.n_categories, "computers": self.n_computers,
            "departments": self.n_departments, "logins": self.n_logins, "rules": self.n_rules,
            "users": self.n_users,
        }[name]

    @staticmethod
    def _activity_level(i: int) -> int:
        return i % 5

    def _activities_row(self, i: int) -> dict:
        category = (i - 1) % self.n_categories + 1
        updated = self._stamp("activity-updated", i)
        if i in self.changed_activity_names:
            updated = self.advanced_at or updated
        return {
            "id": i, "category": {"id": category, "name": f"Category {category}"}, "category_id": category,
            "custom_levels": [], "icon": {"url": f"https://icons.example/{i}.png"}, "level": self._activity_level(i),
            "level_redefined": i % 2 == 0, "name": self.changed_activity_names.get(i, f"app{i}.exe"),
            "type": i % 2, "inserted_at": self._stamp("activity", i), "updated_at": updated,
            "publisher": f"Vendor {i % 4}",  # not in the document
        }

    def _categories_row(self, i: int) -> dict:
        return {
            "id": i, "custom_levels": [{"department_id": 1, "level": 3}] if i == 1 else [],
            "description": f"Category {i}", "is_default": i == 1, "level": i % 5, "name": f"Category {i}",
            "parent_id": 0, "parent_name": None, "inserted_at": self._stamp("category", i),
            "updated_at": self._stamp("category-updated", i), "color": f"#{i:06x}",
        }

    def _computers_row(self, i: int) -> dict:
        return {
            "blocked": False, "city": "Lisbon", "client_category_version": "7", "client_path": r"C:\\ctl",
            "client_version": "5.2.1", "country": "Portugal", "country_code": 351, "deleted": False,
            "description": "", "friendly_name": f"PC {i}", "id": i, "install_guid": f"guid-{i:04d}",
            "ip": f"198.51.100.{i % 250 + 1}", "last_connect_time": _iso(self._start_ts + i * 3600),
            "last_upload_time": "2026-01-02T03:04:05.123456+02:00", "name": f"PC-{i:03d}",
            "options_id": 1, "options_inherited": True, "os_version": "Windows 11", "parent_id": 1,
            "security_inherited": True, "inserted_at": self._stamp("computer", i),
            "updated_at": self._stamp("computer-updated", i), "mac_address": f"00:11:22:33:44:{i:02x}",
        }

    def _departments_row(self, i: int) -> dict:
        return {
            "id": i, "ancestors": [] if i == 1 else [1], "ancestors_names": [] if i == 1 else ["Department 1"],
            "name": f"Department {i}", "parent_id": 0 if i == 1 else 1,
            "inserted_at": self._stamp("department", i), "updated_at": self._stamp("department-updated", i),
            "members_count": i * 2,
        }

    def _logins_row(self, i: int) -> dict:
        return {
            "id": i, "email": f"admin{i}@example.com", "first_name": f"Admin{i}", "ip": "127.0.0.1",
            "last_name": "Example", "mfa": i % 2 == 0, "policy_id": 1, "policy": {"id": 1, "name": "default"},
            "related_users": [], "role": "owner" if i == 1 else "admin",
            "inserted_at": self._stamp("login", i), "updated_at": self._stamp("login-updated", i),
            "users": [1, 2], "departments": [1], "verified": True, "locale": "en",
        }

    def _rules_row(self, i: int) -> dict:
        return {
            "data": {"type": "activity", "activities": [i]}, "deleted": False, "departments": [1],
            "departments_ex": [], "enabled": True, "id": i, "name": f"Rule {i}",
            "inserted_at": self._stamp("rule", i), "updated_at": self._stamp("rule-updated", i),
            "users": [], "users_ex": [], "notify": True,
        }

    def _users_row(self, i: int) -> dict:
        return {
            "ancestors": [1], "ancestors_names": ["Department 1"], "blocked": False, "custom_options": {},
            "deleted": False, "description": "", "friendly_name": f"User {i}", "id": i,
            "is_custom_options": False, "last_connect_time": _iso(self._start_ts + i * 7200),
            "last_upload_time": _iso(self._start_ts + i * 7300), "login_id": 1, "name": f"user{i}",
            "nearest_options_id": 1, "old_name": "", "options": {}, "options_id": 1, "options_inherited": True,
            "parent_id": self._user_department(i), "security_inherited": True,
            "sync_friendly_name": True, "inserted_at": self._stamp("user", i),
            "updated_at": self._stamp("user-updated", i), "domain": "CORP",
        }

    # ------------------------------------------------------------ raw rows
    def _user_computer(self, user: int) -> int:
        return (user - 1) % self.n_computers + 1

    def _user_department(self, user: int) -> int:
        return (user - 1) % self.n_departments + 1  # the user's parent_id

    def _base_key(self, index: int) -> tuple[int, int, int]:
        slot, j = divmod(index, ROWS_PER_SLOT)
        us = self._start_us + int((slot + 0.5) * self._step_us)
        user = slot % (self.n_users - ROWS_PER_SLOT + 1) + j + 1
        return us, user, self._user_computer(user)

    def _raw_row(self, key: tuple[int, int, int], report: str) -> dict:
        us, user, computer = key
        h = (us * 2654435761 + user * 40503 + computer + self.seed) & 0xFFFFFFFF
        # fold the high bits in: the low bits of `us` can be the same for every slot (a whole
        # number of microseconds per slot), and the activity is h's remainder
        h = (h ^ h >> 16) * 0x45D9F3B & 0xFFFFFFFF
        h ^= h >> 16
        activity = h % self.n_activities + 1
        duration = h % 300 + 1
        row = {
            "start_time": _iso_us(us), "end_time": _iso_us(us + duration * US), "user_id": user,
            "computer_id": computer, "activity_id": activity, "duration": duration,
            "title": f"Document {h % 1000} - app{activity}",
        }
        if h >> 7 & 1:  # about one row in two (inline: millions of raw rows are served)
            row["undocumented_raw"] = {"source": "raw", "ref": h % 10007}
        if report == "users_activities_timeline":
            row["productivity_level"] = h % 5
        else:
            row["url"] = f"https://intranet.example/page/{h % 500}" if activity % 2 else None
        return row

    def _base_range(self, lo_us: int, hi_us: int) -> tuple[int, int]:
        """Base indexes whose start_time is in [lo_us, hi_us)."""
        key = lambda i: self._base_key(i)[0]  # noqa: E731
        lo = bisect.bisect_left(range(self.base_count), lo_us, key=key)
        hi = bisect.bisect_left(range(self.base_count), hi_us, key=key)
        return lo, hi

    def _base_has(self, key: tuple[int, int, int]) -> bool:
        i = bisect.bisect_left(range(self.base_count), key, key=self._base_key)
        return i < self.base_count and self._base_key(i) == key

    def _cursor_page(self, request: Request, report: str, first: dt.date, last: dt.date,
                     limit: int, descending: bool) -> list[dict]:
        lo_us, hi_us = _day_ts(first) * US, (_day_ts(last) + 86400) * US
        lo, hi = self._base_range(lo_us, hi_us)
        xlo = bisect.bisect_left(self.extra_keys, (lo_us,))
        xhi = bisect.bisect_left(self.extra_keys, (hi_us,))
        if prev := request.param("prev"):
            try:
                p_time, p_user, p_computer = prev.split(",")
                # exact to the microsecond: a cursor whose start_time lost digits repeats rows
                prev_key = (_parse_us(p_time), int(p_user), int(p_computer))
            except ValueError as exc:
                raise BadRequest("prev must be <start_time>,<user_id>,<computer_id>") from exc
            if descending:
                hi = min(hi, bisect.bisect_left(range(self.base_count), prev_key, key=self._base_key))
                xhi = min(xhi, bisect.bisect_left(self.extra_keys, prev_key))
            else:
                lo = max(lo, bisect.bisect_right(range(self.base_count), prev_key, key=self._base_key))
                xlo = max(xlo, bisect.bisect_right(self.extra_keys, prev_key))
        users = _id_set(request, "users")
        activities = _id_set(request, "activities")
        keyword = request.param(SEARCH)
        step = -1 if descending else 1
        bi, bend = (hi - 1, lo - 1) if descending else (lo, hi)
        xi, xend = (xhi - 1, xlo - 1) if descending else (xlo, xhi)
        rows: list[dict] = []
        while len(rows) < limit and (bi != bend or xi != xend):
            bkey = self._base_key(bi) if bi != bend else None
            xkey = self.extra_keys[xi] if xi != xend else None
            take_base = xkey is None or (bkey is not None and ((bkey > xkey) if descending else (bkey < xkey)))
            if take_base:
                key, bi = bkey, bi + step
            else:
                key, xi = xkey, xi + step
            if users is None or key[1] in users:
                row = self._raw_row(key, report)
                if (activities is None or row["activity_id"] in activities) and (
                        keyword is None or _matches(request, [row])):
                    rows.append(row)
        return rows

    def raw_count(self, first: dt.date, last: dt.date) -> int:
        lo_us, hi_us = _day_ts(first) * US, (_day_ts(last) + 86400) * US
        lo, hi = self._base_range(lo_us, hi_us)
        extra = bisect.bisect_left(self.extra_keys, (hi_us,)) - bisect.bisect_left(self.extra_keys, (lo_us,))
        return hi - lo + extra

    # ------------------------------------------------------------ report rows
    def _data_days(self, first: dt.date, last: dt.date) -> list[dt.date]:
        first, last = max(first, self.first_day), min(last, self.today)
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]

    def _events_per_day(self, day: dt.date) -> int:
        return self.n_users + self.bonus.get(day, 0)

    def _event_rows(self, report: str, day: dt.date) -> list[dict]:
        base = _day_ts(day) + 2 * 3600
        rows = []
        for j in range(self._events_per_day(day)):
            h = _h(self.seed, report, day.toordinal(), j)
            # sparse rows come in pairs sharing a user and a start_time (on two
            # computers the rows name by computer_name only, not computer_id)
            slot = j // 2 if self.sparse_rows else j
            hs = _h(self.seed, report, day.toordinal(), slot) if self.sparse_rows else h
            user = slot % self.n_users + 1
            start = base + slot * 600 + hs % 300
            micros = hs % US
            # the two rows of a sparse pair end at times of different parity
            row = {"start_time": _iso(start, micros), "end_time": _iso(start + 30 + h % 100 * 2 + j % 2, micros),
                   "user_id": user}
            if not self.sparse_rows:
                row["computer_id"] = self._user_computer(user)
                row["department_id"] = self._user_department(user)
            else:  # the pair's computers, by name only
                row["computer_name"] = f"PC-{user}-{j % 2}"
            row.update(EVENT_EXTRAS[report](h))
            if j % 2 == 0:
                _undocumented(row, "event", h)
            rows.append(row)
        return rows

    def _email_rows(self, day: dt.date) -> list[dict]:
        rows = []
        for j in range(self._events_per_day(day)):
            h = _h(self.seed, "email", day.toordinal(), j)
            user = j % self.n_users + 1
            rows.append({
                "attachments": {"count": h % 3}, "computer_id": self._user_computer(user),
                "direction": h % 2, "from_address": f"user{user}@example.com",
                "id": (day - self.first_day).days * 1000 + j + 1, "message": f"Hello {h % 100}",
                "protocol": "smtp", "subject": f"Subject {h % 50}",
                "time": _iso(_day_ts(day) + 3600 + j * 300 + h % 200, h % US),
                "to_address": [f"peer{h % 9}@example.org"], "user_id": user, "size_bytes": h % 100000,
            })
            if j % 2 == 0:
                _undocumented(rows[-1], "email", h)
        return rows

    def _aggregate(self, kind: str, report: str, days: list[dt.date]) -> list[dict]:
        if not days:
            return []
        growth = self.today_growth if self.today in days else 0
        entities = {
            "agg_user": ("user_id", self.n_users), "agg_department": ("department_id", self.n_departments),
            "agg_activity": ("activity_id", self.n_activities), "agg_category": ("category_id", self.n_categories),
        }
        field, count = entities[kind]
        rows = []
        for i in range(1, count + 1):
            total = sum(_h(self.seed, report, d.toordinal(), i) % 28800 for d in days) + growth
            row: dict[str, t.Any] = {field: i, "total_time": total, "productive_time": total // 2,
                                     "idle_time": total // 7}
            if field == "category_id" and self.sparse_rows:
                del row[field]  # told apart by name only
            if field == "user_id" and not self.sparse_rows:
                row["department_id"] = self._user_department(i)
            if field != "user_id":
                row["name"] = {"department_id": "Department", "activity_id": "app",
                               "category_id": "Category"}[field] + f" {i}"
            if report == "timeline_summary":
                row["intervals"] = [{"start": f"{h:02d}:00", "active": (i * h) % 60} for h in range(8, 12)]
            if i % 2:
                _undocumented(row, "aggregate", report, i)
            rows.append(row)
        return rows

    def _by_days(self, report: str, days: list[dt.date], user: int | None = None) -> list[dict]:
        """One time-based row per day: its start_time and end_time bound the day.
        ``user``: the documented ``user_id`` filter of workloadByDays."""
        if user is not None and not 1 <= user <= self.n_users:
            return []
        rows = []
        for d in days:
            if user is None:
                total, users = _h(self.seed, report, d.toordinal()) % 86400, self.n_users
            else:
                total, users = _h(self.seed, report, d.toordinal(), user) % 28800, 1
            row: dict[str, t.Any] = {"start_time": _iso(_day_ts(d)), "end_time": _iso(_day_ts(d) + 86399, US - 1)}
            if self.by_days_date:
                row["date"] = d.isoformat()
            row["total_time"] = total + (self.today_growth if d == self.today else 0)
            row["users_count"] = users
            rows.append(_undocumented(row, "day", report, d.toordinal()))
        return rows

    def _summary_rows(self, user: int, day: dt.date, request: Request) -> list[dict]:
        interval = _interval(request)
        active = _h(self.seed, "tsu", user, day.toordinal()) % 28800
        if not self.summary_per_interval:
            rows = [{"user_id": user, "date": day.isoformat(), "active_time": active, "interval": interval}]
        else:
            start = _day_ts(day) + 9 * 3600  # four intervals from 09:00
            rows = [{"user_id": user, "start_time": _iso(start + i * interval * 60),
                     "end_time": _iso(start + (i + 1) * interval * 60), "active_time": active % (interval * 60)}
                    for i in range(4)]
        return [_undocumented(r, "summary", user) if user % 2 else r for r in rows]

    def _caption_rows(self, activity: int, days: list[dt.date]) -> list[dict]:
        if activity % 3 != 1:
            return []
        rows = []
        for day in days:
            for j in range(2):
                h = _h(self.seed, "captions", activity, day.toordinal(), j)
                user = (activity + j) % self.n_users + 1
                start = _day_ts(day) + 5 * 3600 + j * 1800 + h % 600
                row = {"start_time": _iso(start, h % US), "end_time": _iso(start + 60, h % US), "user_id": user,
                       "computer_id": self._user_computer(user), "activity_id": activity}
                row.update(EVENT_EXTRAS["captions"](h))
                rows.append(_undocumented(row, "caption", h) if j == 0 else row)
        return rows

    def _audit_rows(self, day: dt.date) -> list[dict]:
        rows = []
        for j in range(self.audit_per_day + self.bonus.get(day, 0)):
            h = _h(self.seed, "audit", day.toordinal(), j)
            login = h % self.n_logins + 1
            row = {
                "id": (day - self.first_day).days * 1000 + j + 1, "action": AUDIT_ACTIONS[h % len(AUDIT_ACTIONS)],
                "api_type": "rest" if h % 3 == 0 else "rpc", "object_type": AUDIT_OBJECTS[h % len(AUDIT_OBJECTS)],
                "object_id": h % 50 + 1, "login_id": login, "email": f"admin{login}@example.com",
                "ip": f"192.0.2.{login}", "inserted_at": _iso(_day_ts(day) + 600 + j * 900 + h % 300, h % US),
                "details": {"changes": h % 7},
            }
            if self.sparse_rows:
                del row["id"]
            if j % 2 == 0:
                _undocumented(row, "audit", h)
            rows.append(row)
        return rows

    def _users_activities(self) -> list[dict]:
        rows = []
        for u in range(1, self.n_users + 1):
            for a in range(1, self.n_activities + 1):
                if (u + a) % 2 == 0:
                    total = _h(self.seed, "ua", u, a) % 36000
                    if self.sparse_rows:
                        rows.append({"user_id": u, "activity": f"app{a}.exe", "total_time": total})
                    else:
                        rows.append({"user_id": u, "activity_id": a, "total_time": total})
                    if u % 2:
                        _undocumented(rows[-1], "users_activity", u, a)
        return rows

    # ------------------------------------------------------------ time
    def advance(self, new: int = 12, late: int = 6, grow_today: int = 600, now: str | None = None) -> dict:
        """``new`` raw rows dated now, ``late`` raw rows dated yesterday, two more
        event rows today and one yesterday in every event report, today's
        aggregates grow, and one activity is renamed. ``now``: the server's
        clock (ISO 8601, UTC without an offset; default: the wall clock)."""
        at = dt.datetime.now(UTC) if now is None else dt.datetime.fromisoformat(now)
        now_ts = int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp())
        yesterday = _day_ts(self.today - dt.timedelta(days=1)) + 12 * 3600
        added = 0
        for origin, count in ((now_ts - 2 * new, new), (yesterday, late)):
            us = origin * US + 123457
            for i in range(count):
                user = i % self.n_users + 1
                key = (us, user, self._user_computer(user))
                while self._base_has(key) or key in self.extra_keys:
                    us += 1
                    key = (us, user, self._user_computer(user))
                bisect.insort(self.extra_keys, key)
                added += 1
                us += 1
        for day, more in ((self.today, 2), (self.today - dt.timedelta(days=1), 1)):
            if day >= self.first_day:
                self.bonus[day] = self.bonus.get(day, 0) + more
        self.today_growth += grow_today
        self.advanced_at = _iso(now_ts)
        self.changed_activity_names[1] = f"app1-renamed-{len(self.changed_activity_names) + self.today_growth}.exe"
        return {"raw_added": added, "raw_total": self.base_count + len(self.extra_keys)}

    def delete(self, stream: str, id: int) -> dict:
        """The collection entry ``id`` is deleted: lists no longer show it
        (reports keep its past rows, as history)."""
        if stream not in COLLECTIONS or not 1 <= int(id) <= self._count(stream):
            raise ValueError(f"no {stream} entry {id}")
        self.deleted.add((stream, int(id)))
        return {"deleted": [stream, int(id)]}

    def expected_counts(self, start: dt.date | None = None, end: dt.date | None = None) -> dict[str, int]:
        """Distinct primary keys a sync of days ``start``..``end`` loads (default:
        the tap's default start_date, 30 days ago, to today)."""
        start = start or self.today - dt.timedelta(days=30)
        end = end or self.today
        days = self._data_days(start, end)
        n_days = len(days)
        events = sum(self._events_per_day(d) for d in days)
        counts = {name: self._count(name) - sum(n == name for n, _ in self.deleted) for name in COLLECTIONS}
        counts["audit_log"] = sum(self.audit_per_day + self.bonus.get(d, 0) for d in days)
        for kind, report in REPORTS.values():
            if kind in ("event", "email"):
                counts[report] = events
            elif kind == "agg_user":
                counts[report] = n_days * self.n_users
            elif kind == "agg_department":
                counts[report] = n_days * self.n_departments
            elif kind == "agg_activity":
                counts[report] = n_days * self.n_activities
            elif kind == "agg_category":
                counts[report] = n_days * self.n_categories
            elif kind == "by_days":
                counts[report] = n_days
        raw = self.raw_count(start, end) if days else 0
        counts["detailed_activities"] = counts["users_activities_timeline"] = raw
        counts["users_activities"] = len(self._users_activities())
        counts["timeline_summary_by_user"] = n_days * self.n_users
        counts["timeline_raw_by_user"] = events
        return counts

    def captions_count(self, start: dt.date, end: dt.date) -> int:
        days = self._data_days(start, end)
        return sum(len(self._caption_rows(a, days)) for a in range(1, self.n_activities + 1))

    def info(self) -> dict:
        return {
            "credentials": {"api_token": self.token},
            "expected_counts": self.expected_counts(),
            "today": self.today.isoformat(),
            "first_day": self.first_day.isoformat(),
            "users": self.n_users,
            "raw_total": self.base_count + len(self.extra_keys),
        }

    # ------------------------------------------------------------ http
    def error(self, status: int, message: str) -> Response:
        return Response.json({"error": message}, status=status)

    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self.error(401, "Unauthorized: invalid or missing API token")
        if request.method != "GET":
            return self.error(405, "Method not allowed")
        try:
            return self._route(request)
        except BadRequest as exc:
            return self.error(400, str(exc))

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        descending = _sort_desc(request)
        _check_filters(request, path)
        if path.startswith("/api/v1/") and path[len("/api/v1/"):] in COLLECTIONS:
            rows = _sorted(request, self.collection(path[len("/api/v1/"):]))
            if ids := _id_set(request, "ids"):
                rows = [r for r in rows if r["id"] in ids]
            return self._offset_page(request, rows, descending)
        if path == "/api/v1/audit_log":
            first, last = _dates(request, required=False, default=(self.first_day, self.today))
            rows = [r for d in self._data_days(first, last) for r in self._audit_rows(d)]
            rows = _audit_filter(request, rows)
            return self._offset_page(request, rows, descending)
        if path in CURSOR_REPORTS:
            if request.param("offset") is not None:
                raise BadRequest("offset is not supported by this report: use prev")
            first, last = _dates(request, required=False, default=(self.first_day, self.today))
            limit = _limit(request, MAX_LIMIT)
            return Response.json({"data": self._cursor_page(request, CURSOR_REPORTS[path], first, last,
                                                            limit, descending)})
        if path == S + "usersActivities":
            return self._offset_page(request, self._users_activities(), descending)
        for prefix, kind in ((S + "timelineSummary/", "summary"), (S + "timelineRaw/", "raw")):
            if path.startswith(prefix):
                try:
                    user = int(path[len(prefix):])
                except ValueError as exc:
                    raise BadRequest("user_id must be an integer") from exc
                if kind == "summary":
                    _interval(request)
                first, last = _dates(request, required=True)
                days = self._data_days(first, last)
                if kind == "summary":
                    rows = [r for d in days for r in self._summary_rows(user, d, request)] \
                        if 1 <= user <= self.n_users else []
                else:
                    rows = [r for d in days for r in self._event_rows("timeline_raw", d) if r["user_id"] == user]
                return self._offset_page(request, rows, descending, default_limit=25)
        if path in REPORTS:
            kind, report = REPORTS[path]
            if path == S + "timelineSummary":
                _interval(request)
            if path in ONE_DAY_REPORTS:
                first, _ = _dates(request, required=True, one_day=True)
                last = first
            else:
                first, last = _dates(request, required=False, default=(self.first_day, self.today))
            days = self._data_days(first, last)
            if kind == "event":
                rows = [r for d in days for r in self._event_rows(report, d)]
                if report == "activity_sessions" and request.param("aggregate_by_user") == "true":
                    for row in rows:  # a user's sessions over all computers: no computer
                        row.pop("computer_id", None)
            elif kind == "email":
                rows = [r for d in days for r in self._email_rows(d)]
            elif kind == "by_days":
                user = _int_param(request, "user_id") if path in USER_ID_REPORTS else None
                rows = self._by_days(report, days, user)
            elif kind == "captions":
                try:
                    activity = int(request.param("activity_id") or "")
                except ValueError as exc:
                    raise BadRequest("activity_id is required") from exc
                rows = self._caption_rows(activity, days)
            elif report == "timeline_summary" and self.summary_per_interval:
                rows = [r for u in range(1, self.n_users + 1) for r in self._summary_rows(u, first, request)]
            else:
                rows = self._aggregate(kind, report, days)
            users = None if path in USER_ID_REPORTS else _id_set(request, "users")  # not a parameter there
            if users is not None:
                rows = [r for r in rows if r.get("user_id", next(iter(users))) in users]
            if (level := _int_param(request, "level")) is not None and kind == "agg_activity":
                rows = [r for r in rows if self._activity_level(r["activity_id"]) == level]
            # the other documented filters (weekdays, hours, computers, categories, ...) are
            # checked (_check_filters) but do not narrow these generated aggregates
            rows = _matches(request, rows)
            if path in NO_PAGING_REPORTS:
                return Response.json({"data": rows[::-1] if descending else rows})
            return self._offset_page(request, rows, descending,
                                     default_limit=25 if path in SMALL_DEFAULT_LIMIT else MAX_LIMIT)
        return self.error(404, f"Not found: {request.path}")

    def _offset_page(self, request: Request, rows: list[dict], descending: bool,
                     default_limit: int = MAX_LIMIT) -> Response:
        limit = _limit(request, default_limit)
        try:
            offset = int(request.param("offset", "0"))
        except ValueError as exc:
            raise BadRequest("offset must be an integer") from exc
        if offset < 0:
            raise BadRequest("offset must be 0 or more")
        if descending:
            rows = rows[::-1]
        return Response.json({"data": rows[offset:offset + limit]})


def _limit(request: Request, default: int) -> int:
    try:
        limit = int(request.param("limit", str(default)))
    except ValueError as exc:
        raise BadRequest("limit must be an integer") from exc
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"limit must be between 1 and {MAX_LIMIT}")
    return limit


#: the collections' order without ``sort_by`` (the document names no default key)
DEFAULT_SORT_BY = "updated_at"


def _sorted(request: Request, rows: list[dict]) -> list[dict]:
    """A collection in ascending ``sort_by`` order (ties by id); ``_offset_page``
    reverses it for ``sort_direction=desc``, the default."""
    key = request.param("sort_by") or DEFAULT_SORT_BY
    if rows and any(key not in r for r in rows):
        raise BadRequest(f"sort_by must be a field of the rows, not {key!r}")

    def order(row: dict) -> tuple:
        value = row[key]
        return value is None, value if isinstance(value, (int, float)) else str(value or ""), row["id"]

    return sorted(rows, key=order)


def _sort_desc(request: Request) -> bool:
    direction = request.param("sort_direction", "desc")
    if direction not in ("asc", "desc"):
        raise BadRequest("sort_direction must be asc or desc")
    return direction == "desc"


def _dates(request: Request, *, required: bool, one_day: bool = False,
           default: tuple[dt.date, dt.date] | None = None) -> tuple[dt.date, dt.date]:
    values = {}
    for name in ("start_time",) if one_day else ("start_time", "end_time"):
        raw = request.param(name)
        if raw is None:
            if required:
                raise BadRequest(f"{name} is required")
            continue
        if len(raw) != 10:
            raise BadRequest(f"{name} must be a date in YYYY-MM-DD format")
        try:
            values[name] = dt.date.fromisoformat(raw)
        except ValueError as exc:
            raise BadRequest(f"{name} must be a date in YYYY-MM-DD format") from exc
    first = values.get("start_time", default[0] if default else None)
    last = values.get("end_time", first if one_day else (default[1] if default else None))
    assert first is not None and last is not None
    if last < first:
        raise BadRequest("end_time must not be before start_time")
    return first, last


def _int_param(request: Request, name: str) -> int | None:
    raw = request.param(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise BadRequest(f"{name} must be an integer") from exc


def _interval(request: Request) -> int:
    """The timeline summary's aggregation interval: 5, 15, 30 (default) or 60 minutes."""
    raw = request.param("interval", "30")
    if raw not in {str(i) for i in INTERVALS}:
        raise BadRequest(f"interval must be one of {', '.join(map(str, INTERVALS))}, not {raw!r}")
    return int(raw)


def _id_set(request: Request, name: str) -> set[int] | None:
    raw = request.param(name)
    if not raw:
        return None
    try:
        return {int(v) for v in raw.split(",")}
    except ValueError as exc:
        raise BadRequest(f"{name} must be comma-separated integers") from exc


def _audit_filter(request: Request, rows: list[dict]) -> list[dict]:
    for param, field in (("object_types", "object_type"), ("api_types", "api_type"), ("actions", "action")):
        if raw := request.param(param):
            allowed = set(raw.split(","))
            rows = [r for r in rows if r[field] in allowed]
    if logins := _id_set(request, "logins"):
        rows = [r for r in rows if r["login_id"] in logins]
    elif raw := request.param("emails"):
        emails = set(raw.split(","))
        rows = [r for r in rows if r["email"] in emails]
    if (object_id := _int_param(request, "object_id")) is not None:
        rows = [r for r in rows if r["object_id"] == object_id]
    if ip := request.param("ip"):
        rows = [r for r in rows if r["ip"] == ip]
    # apply_timezone: this account's timezone is UTC, so the days read the same either way
    return rows


def _documented_filters(path: str) -> frozenset[str] | None:
    for prefix in (S + "timelineSummary/", S + "timelineRaw/"):
        if path.startswith(prefix):
            return DOCUMENTED_FILTERS[prefix + "{user_id}"]
    return DOCUMENTED_FILTERS.get(path)


def _check_filters(request: Request, path: str) -> None:
    """400 for a filter the endpoint does not document, or a value the document does not allow."""
    documented = _documented_filters(path)
    if documented is None:
        return
    for name in FILTER_PARAMS & set(request.query):
        if name not in documented:
            raise BadRequest(f"{name} is not a parameter of {path}")
        raw = request.param(name) or ""
        if name in INT_FILTERS:
            allowed, is_list = INT_FILTERS[name]
            try:
                values = [int(v) for v in (raw.split(",") if is_list else [raw])]
            except ValueError as exc:
                kind = "comma-separated integers" if is_list else "an integer"
                raise BadRequest(f"{name} must be {kind}, not {raw!r}") from exc
            if allowed is not None and any(v not in allowed for v in values):
                raise BadRequest(f"{name} must be within {allowed.start}..{allowed.stop - 1}, not {raw!r}")
        elif name in BOOLEAN_FILTERS and raw not in ("true", "false"):
            raise BadRequest(f"{name} must be true or false, not {raw!r}")
        elif name == "ip" and not IPV4.match(raw):
            raise BadRequest(f"ip must be an IPv4 address, not {raw!r}")
        elif name == SEARCH and not raw:
            raise BadRequest(f"{name} must not be empty")


def _matches(request: Request, rows: list[dict]) -> list[dict]:
    """The keyword search: rows with a string field containing the keywords (case-insensitive)."""
    keyword = (request.param(SEARCH) or "").lower()
    if not keyword:
        return rows
    return [r for r in rows if any(isinstance(v, str) and keyword in v.lower() for v in r.values())]

