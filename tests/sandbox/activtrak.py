"""ActivTrak Live Data API (vendor-docs/activtrak-live-data-api.txt).

- ``GET /reports/v2/activitylog``: cursor pagination. Records are kept in
  arrival order; the cursor names the last record handed out, so a cursor
  request returns records that arrived after it, whatever their date (late
  records included). An empty page returns the cursor it was given.
- ``GET /reports/v2/workinghours/users`` and ``.../computers``: ``from``/``to``
  (inclusive days), ``page`` from 1, ``pageSize`` up to 1000,
  ``{"activity": [...], "total": N}``.
- Auth: ``Authorization: Bearer <token>``; 401 otherwise.

Records are generated from their index and the seed, never stored, so a
scale of millions costs no memory. Some rows of every endpoint carry fields
the document does not name (``undocumented_*``), as a real server may add.

Date-times carry no offset, as the document shows them (``"datetime"``):
the server's clock is ``timezone`` (an IANA name; default UTC): it writes
its local times, its days are its local days, and it reads the ``from``/
``to``/``startDate``/``endDate`` days as its own. ``advance()`` appends new records (dated
now) and late ones (dated in the past), and makes today's working hours grow.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import json
import random
import typing as t
from zoneinfo import ZoneInfo

from tests.sandbox.core import Request, Response, VendorApp

MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 150
DOMAINS = ["corp", "sales", "eng"]
APPS = ["chrome.exe", "outlook.exe", "excel.exe", "slack.exe", "code.exe", "teams.exe"]
SITES = ["github.com", "news.example.com", "docs.example.org", "mail.example.com", None]


class App(VendorApp):
    name = "activtrak"

    def __init__(
        self,
        *,
        seed: int = 1,
        scale: int = 5000,
        days: int = 30,
        users: int = 12,
        computers: int = 8,
        groups: int = 3,
        token: str = "sandbox-activtrak-token",
        today: str | None = None,
        timezone: str | None = None,
    ) -> None:
        self.seed = seed
        self.token = token
        self.users = users
        self.computers = computers
        self.groups = groups
        self.tz: dt.tzinfo = ZoneInfo(timezone) if timezone else dt.UTC
        self.today = dt.date.fromisoformat(today) if today else dt.datetime.now(self.tz).date()
        self.first_day = self.today - dt.timedelta(days=days - 1)
        self.days = days
        self.base_count = scale
        start = self._day_start(self.first_day.isoformat())
        end = dt.datetime.now(dt.UTC).timestamp() if not today else start + days * 86400
        self._start_ts = start
        self._step = max(end - start, 1.0) / max(scale, 1)
        # timestamps of the records that arrived after generation, in arrival order
        self.extra: list[float] = []
        self.today_growth = 0  # seconds added to today's working hours

    # ---------------------------------------------------------------- data
    @property
    def total(self) -> int:
        return self.base_count + len(self.extra)

    def _timestamp(self, seq: int) -> float:
        if seq < self.base_count:
            return self._start_ts + (seq + 0.5) * self._step
        return self.extra[seq - self.base_count]

    def activity(self, seq: int) -> dict:
        rng = random.Random(self.seed * 1_000_003 + seq)
        user = rng.randrange(self.users)
        computer = user % self.computers
        ts = self._timestamp(seq)
        app = rng.choice(APPS)
        site = rng.choice(SITES) if app == "chrome.exe" else None
        alarm = rng.random() < 0.02
        row = {
            "logId": seq + 1,
            "productivity": rng.choice([-1, 0, 1, 1, 2]),
            "popupAlarm": True if alarm else None,
            "emailAlarm": None,
            "externalNotificationAlarm": None,
            "terminate": False if alarm else None,
            "date": self._iso(ts),
            "computerId": computer + 1,
            "computer": f"PC-{computer + 1:03d}",
            "primaryDomain": DOMAINS[computer % len(DOMAINS)],
            "privateIp": f"127.0.{computer // 250}.{computer % 250 + 1}",
            "publicIp": "127.0.0.1",
            "loginDomain": DOMAINS[user % len(DOMAINS)],
            "user": f"user{user + 1:03d}",
            "session": rng.randrange(1, 5),
            "duration": rng.randrange(1, 900),
            "applicationId": APPS.index(app) + 1,
            "websiteId": (SITES.index(site) + 1) if site else None,
            "executable": app,
            "description": f"{app} window {rng.randrange(100)}",
            "url": f"https://{site}/page/{rng.randrange(1000)}" if site else "",
        }
        if seq % 7 == 3:  # fields the document does not name, in some rows
            row["undocumented_windowTitleHash"] = f"{rng.getrandbits(32):08x}"
            row["undocumented_agent"] = {"version": f"8.{seq % 5}.1", "os": "Windows"}
        return row

    def working_hours(self, view: str, day: dt.date, entity: int) -> dict:
        rng = random.Random(f"{self.seed}:{view}:{day}:{entity}")
        productive, unproductive, undefined = (rng.randrange(0, 12000) for _ in range(3))
        if day == self.today:
            productive += self.today_growth
        passive = [rng.randrange(0, 3000) for _ in range(3)]
        start = dt.datetime.combine(day, dt.time(8), self.tz) + dt.timedelta(minutes=rng.randrange(90))
        active_total = productive + unproductive + undefined
        end = start + dt.timedelta(seconds=active_total + sum(passive))
        row: dict[str, t.Any] = {"date": f"{day.isoformat()}T00:00:00"}
        if view == "users":
            row["computerid"] = entity % self.computers + 1
        else:
            row["userid"] = entity + 1
        row["groups"] = [f"Group {entity % self.groups + 1}"]
        row["firstActivity"] = self._iso(start.timestamp())
        row["lastActivity"] = self._iso(end.timestamp())
        row["lastActivityLog"] = self._iso(end.timestamp() - rng.randrange(60))
        if view == "users":
            row["users"] = [f"user{entity + 1:03d}"]
        else:
            row["computers"] = [f"PC-{entity + 1:03d}"]
        row["activeTime"] = {
            "productive": productive,
            "unproductive": unproductive,
            "undefined": undefined,
            "total": active_total,
        }
        row["passiveTime"] = {
            "productive": passive[0],
            "unproductive": passive[1],
            "undefined": passive[2],
            "total": sum(passive),
        }
        row["totalTime"] = active_total + sum(passive)
        if entity % 3 == 0:  # fields the document does not name, in some rows
            row["undocumented_location"] = ("office", "remote")[day.toordinal() % 2]
        return row

    # ---------------------------------------------------------------- time
    def advance(self, new: int = 25, late: int = 10, late_days_ago: int = 3, grow_today: int = 600,
                now: str | None = None) -> dict:
        """``new`` records dated now, ``late`` records dated ``late_days_ago`` back.
        ``now``: the server's clock (ISO 8601, UTC without an offset; default: the wall clock)."""
        at = dt.datetime.now(dt.UTC) if now is None else dt.datetime.fromisoformat(now)
        now_ts = (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()
        first_new = self.total
        for i in range(new):
            self.extra.append(now_ts - (new - i))
        late_ts = now_ts - late_days_ago * 86400
        for i in range(late):
            self.extra.append(late_ts + i)
        self.today_growth += grow_today
        return {"new": new, "late": late, "first_log_id": first_new + 1, "total": self.total}

    def info(self) -> dict:
        return {
            "credentials": {"api_token": self.token},
            # what a sync from a start_date on or before first_day loads (distinct keys)
            "expected_counts": {
                "activity_log": self.total,
                "working_hours_users": self.days * self.users,
                "working_hours_computers": self.days * self.computers,
            },
            "users": self.users,
            "computers": self.computers,
            "first_day": self.first_day.isoformat(),
            "today": self.today.isoformat(),
            "timezone": str(self.tz),
        }

    # ---------------------------------------------------------------- http
    def handle(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self.error(401, "Authorization has been denied for this request.")
        if request.method != "GET":
            return self.error(405, "Method not allowed")
        try:
            page_size = int(request.param("pageSize", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            return self.error(400, "pageSize must be an integer")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            return self.error(400, f"pageSize must be between 1 and {MAX_PAGE_SIZE}")
        filters = [f for f in ("userId", "groupId", "computerId") if request.param(f) not in (None, "-1")]
        if len(filters) > 1:
            return self.error(400, "Only one of userId, groupId, computerId may be sent")
        if request.path == "/reports/v2/activitylog":
            return self._activity_log(request, page_size)
        if request.path in ("/reports/v2/workinghours/users", "/reports/v2/workinghours/computers"):
            return self._working_hours(request, request.path.rsplit("/", 1)[1], page_size)
        return self.error(404, f"No HTTP resource was found that matches {request.path}")

    def error(self, status: int, message: str) -> Response:
        return Response.json({"message": message}, status=status)

    def malformed_body(self) -> tuple[bytes, str]:
        return b'{"activity": [{"logId": 1, "date": "2024-01', "application/json"

    def _entity_filter(self, request: Request) -> t.Callable[[dict], bool]:
        if (uid := request.param("userId")) not in (None, "-1"):
            name = f"user{int(uid):03d}"
            return lambda rec: rec["user"] == name
        if (gid := request.param("groupId")) is not None:
            group = int(gid)
            return lambda rec: (int(rec["user"][4:]) - 1) % self.groups + 1 == group
        if (cid := request.param("computerId")) is not None:
            computer = int(cid)
            return lambda rec: rec["computerId"] == computer
        return lambda rec: True

    def _activity_log(self, request: Request, page_size: int) -> Response:
        keep = self._entity_filter(request)
        end_ts = None
        if end := request.param("endDate"):
            end_ts = self._day_start(end, next_day=True)
        cursor = request.param("cursor")
        if cursor:
            try:
                after = _decode_cursor(cursor)
            except ValueError:
                return self.error(400, "Invalid cursor")
            first = after + 1
        else:
            start_ts = self._day_start(request.param("startDate") or self.today.isoformat())
            # base records are in date order: find the first one on startDate
            first = bisect.bisect_left(range(self.base_count), start_ts, key=self._timestamp)
            after = first - 1
            base_only_start = start_ts
        rows: list[dict] = []
        seq = first
        last_seen = after
        total = self.total
        while seq < total and len(rows) < page_size:
            if end_ts is not None and seq < self.base_count and self._timestamp(seq) >= end_ts:
                seq = self.base_count  # the rest of the base records are later still
                continue
            ts = self._timestamp(seq)
            if (end_ts is None or ts < end_ts) and (cursor or ts >= base_only_start):
                record = self.activity(seq)
                if keep(record):
                    rows.append(record)
                    last_seen = seq
            seq += 1
        # nothing new: the same cursor back (or, with none, one at the end)
        next_cursor = _encode_cursor(last_seen) if rows else cursor or _encode_cursor(max(total - 1, after))
        return Response.json({"activity": rows, "cursor": next_cursor})

    def _working_hours(self, request: Request, view: str, page_size: int) -> Response:
        try:
            first = dt.date.fromisoformat(request.param("from") or "")
            last = dt.date.fromisoformat(request.param("to") or "")
            page = int(request.param("page", "1"))
        except ValueError:
            return self.error(400, "from and to are required dates (YYYY-MM-DD); page is an integer")
        if page < 1:
            return self.error(400, "page must be 1 or more")
        if last < first:
            return self.error(400, "to must not be before from")
        first = max(first, self.first_day)
        last = min(last, self.today)
        count = self.users if view == "users" else self.computers
        entities = list(range(count))
        if (uid := request.param("userId")) not in (None, "-1"):
            entities = [e for e in entities if e + 1 == int(uid)] if view == "users" else [
                e for e in entities if e == (int(uid) - 1) % self.computers]
        elif (cid := request.param("computerId")) is not None:
            entities = [e for e in entities if (e % self.computers if view == "users" else e) + 1 == int(cid)]
        elif (gid := request.param("groupId")) is not None:
            entities = [e for e in entities if e % self.groups + 1 == int(gid)]
        days = max((last - first).days + 1, 0)
        total = days * len(entities)
        start = (page - 1) * page_size
        rows = []
        for index in range(start, min(start + page_size, total)):
            day = first + dt.timedelta(days=index // len(entities))
            rows.append(self.working_hours(view, day, entities[index % len(entities)]))
        return Response.json({"activity": rows, "total": total})

    # ---------------------------------------------------------------- clock
    def _iso(self, ts: float) -> str:
        """ActivTrak's date-times: the server's local time, no offset, as the .NET API writes them."""
        return dt.datetime.fromtimestamp(ts, self.tz).strftime("%Y-%m-%dT%H:%M:%S")

    def _day_start(self, day: str, next_day: bool = False) -> float:
        """The instant the server's day ``day`` begins (or ends, ``next_day``)."""
        date = dt.date.fromisoformat(day[:10]) + dt.timedelta(days=1 if next_day else 0)
        return dt.datetime.combine(date, dt.time(), self.tz).timestamp()

    def day_instant(self, day: dt.date) -> dt.datetime:
        """The true instant (UTC) of a working-hours row's ``date``: the day's local midnight."""
        return dt.datetime.combine(day, dt.time(), self.tz).astimezone(dt.UTC)

    def instant(self, seq: int) -> dt.datetime:
        """The true instant (UTC) of activity log entry ``seq`` (logId - 1)."""
        return dt.datetime.fromtimestamp(self._timestamp(seq), dt.UTC).replace(microsecond=0)


def _encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": seq}).encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        return int(json.loads(base64.urlsafe_b64decode(cursor.encode()))["after"])
    except Exception as exc:
        raise ValueError(cursor) from exc
