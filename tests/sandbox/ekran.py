"""Ekran System sessions API (vendor-docs/ekran-system-sessions-api.txt).

- ``POST /ekranapi/sessions`` with a JSON body ``{start, end, sessionCount,
  pageIndex}``, all optional; ``sessionCount`` 0 to 1000 (default 1000; more
  answers 400), ``pageIndex`` from 0. Answer ``{"sessions": [...],
  "totalCount": N}``, sessions ordered by sessionId.
- Selection, as the document words it: ``start`` keeps sessions "started or
  finished after" it, ``end`` keeps sessions "started or finished before" it
  (both inclusive here). A closed session is therefore selected by every
  range it overlaps; an open one (``logoutDate`` null) only by ranges that
  hold its login. And as its notes 2 and 3 say, a session that crosses
  ``start`` or ``end`` is clipped: its loginDate is its first activity after
  ``start``, its logoutDate its last activity before ``end``, its durations
  those of the clipped part.
- Auth: the header ``ApiKey: <token>``; 401 otherwise. Errors are ASP.NET
  Web API bodies ``{"Message": "..."}``.
- Durations are .NET time spans (``hh:mm:ss.fffffff``, ``d.hh:mm:ss.fffffff``
  past a day, some with a one-digit hour as in the document's sample); one
  session in ``bad_every`` has the document's impossible productivityTime
  (``11:22:66.6540000``-like: 60+ seconds).

Sessions are generated from their index and the seed, never stored, so a
scale of millions costs no memory: session i logs in at an evenly spread,
jittered time over ``days`` (ending at construction) and lasts a hashed
duration of minutes to hours (a few over a day). A session still running at
construction is open, and a few old ones never closed (a client that stopped
reporting). ``advance()`` closes some open sessions (at the new clock) and
adds new ones: open, closed, and late ones (an offline client reporting a
session that already ended).
"""

from __future__ import annotations

import bisect
import datetime as dt
import json
import math
import typing as t
from zoneinfo import ZoneInfo

from tests.sandbox.core import Request, Response, VendorApp

PATH = "/ekranapi/sessions"
MAX_SESSION_COUNT = 1000
HEADER = "ApiKey"
MASK = (1 << 64) - 1
MAX_DURATION = 30 * 3600.0  # the longest generated session (closed ones)
STALE_EVERY = 499  # one session in this many never reports a logout
DEFAULT_DAYS_BACK = 30  # the tap's default start_date: 30 days ago at midnight UTC


def _mix(value: int) -> int:
    """splitmix64: a cheap, well-spread hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK
    return value ^ (value >> 31)


class App(VendorApp):
    """The Ekran sessions API.

    ``scale`` sessions over ``days`` days ending at ``now`` (default: the
    moment of construction); ``bad_every``: one session in this many has the
    impossible productivityTime (0: none); ``utc_offset_minutes``: the offset
    the server writes its date-times with; ``timezone``: instead, the server's
    clock runs at this zone (an IANA name): it writes its local times without
    an offset and reads ``start``/``end`` without one as local times;
    ``extra_fields``: add a field the
    document does not name (``domainName``) to every session, and
    ``undocumented_recording`` to one in five.
    """

    name = "ekran"

    def __init__(
        self,
        *,
        seed: int = 1,
        scale: int = 3000,
        days: int = 30,
        users: int = 40,
        clients: int = 25,
        token: str = "sandbox-ekran-api-key",
        bad_every: int = 397,
        utc_offset_minutes: int = 0,
        extra_fields: bool = True,
        now: str | None = None,
        timezone: str | None = None,
    ) -> None:
        self.seed = seed
        self.token = token
        self.users = users
        self.clients = clients
        self.bad_every = bad_every
        self.extra_fields = extra_fields
        self.tz: dt.tzinfo = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
        #: the server's clock when it writes and reads times without an offset
        self.clock_zone: dt.tzinfo | None = ZoneInfo(timezone) if timezone else None
        created = dt.datetime.fromisoformat(now) if now else dt.datetime.now(dt.timezone.utc)
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.timezone.utc)
        self.created = math.floor(created.timestamp())
        today = created.astimezone(dt.timezone.utc).date()
        self.first_day = today - dt.timedelta(days=days - 1)
        self.first_ts = dt.datetime.combine(self.first_day, dt.time(), dt.timezone.utc).timestamp()
        self.base_count = scale
        self.step = max(self.created - self.first_ts, 1.0) / max(scale, 1)
        # what happened after generation
        self.clock = float(self.created)  # open sessions' durations run to here
        self.closed_at: dict[int, float] = {}  # sessionId -> logout set by advance()
        self.extra: list[tuple[float, float | None]] = []  # (login, logout) of sessions added later
        self.version = 0
        self._selection_cache: dict[tuple, list[int]] = {}

    # ------------------------------------------------------------------ data
    @property
    def total(self) -> int:
        return self.base_count + len(self.extra)

    def _hash(self, sid: int) -> int:
        return _mix(self.seed * 1_000_003 + sid)

    def _base_login(self, index: int, h: int) -> float:
        # index + jitter in [0, 1): logins stay in index order
        return round(self.first_ts + (index + (h & 0xFFFF) / 65536.0) * self.step, 3)

    def _base_duration(self, h: int) -> float:
        kind = (h >> 16) % 100
        if kind < 3:  # a few long ones: over a day
            return 86400 + (h >> 24) % int(MAX_DURATION - 86400)
        if kind < 30:  # working days
            return 3600 * 4 + (h >> 24) % (3600 * 6)
        return 120 + (h >> 24) % (3600 * 2)  # minutes to two hours

    def times(self, sid: int) -> tuple[float, float | None]:
        """(login, logout) of a session; logout None while it is open."""
        if sid > self.base_count:
            login, logout = self.extra[sid - self.base_count - 1]
        else:
            h = self._hash(sid)
            login = self._base_login(sid - 1, h)
            logout = round(login + self._base_duration(h), 3)
            if logout > self.created or sid % STALE_EVERY == 0:
                logout = None  # still running at generation, or never reported
        if logout is None and sid in self.closed_at:
            logout = self.closed_at[sid]
        return login, logout

    def is_bad(self, sid: int) -> bool:
        return self.bad_every > 0 and sid % self.bad_every == 3

    def session(self, sid: int, start: float | None = None, end: float | None = None) -> dict:
        """Session ``sid`` as a request with ``start``/``end`` answers it: per
        the document's notes 2 and 3, one started before ``start`` starts at
        its first activity after ``start``, one finished after ``end`` ends
        at its last activity before ``end`` (activity: some seconds off the
        edge, by the session's hash). Without them, the whole session."""
        login, logout = self.times(sid)
        h = self._hash(sid)
        if start is not None and login < start:
            login = min(start + 1 + (h >> 56) % 50, logout if logout is not None else self.clock)
        if end is not None and logout is not None and logout > end:
            logout = max(end - 1 - (h >> 44) % 50, login)
        user = (h >> 8) % self.users + 1
        client = (h >> 20) % self.clients + 1
        length = (logout if logout is not None else self.clock) - login
        idle = round(length * ((h >> 40) % 60) / 100.0, 3)
        one_digit = (h >> 50) % 5 == 0  # "8:12:25.7950000", as in the document
        row: dict[str, t.Any] = {
            "duration": _timespan(length, one_digit),
            "idleTime": _timespan(idle, one_digit),
            "productivityTime": _timespan(length - idle, one_digit),
            "clientGuid": _guid(self.seed, client),
            "clientName": f"clientname{client}",
            "logoutDate": self._iso(logout) if logout is not None else None,
            "loginDate": self._iso(login),
            "sessionId": sid,
            "userName": f"username{user}",
            "userId": user,
        }
        if self.is_bad(sid):
            # the document's own impossible value: 66 seconds
            row["productivityTime"] = f"{(h >> 8) % 12}:{(h >> 12) % 60:02d}:{60 + (h >> 16) % 40}.6540000"
        if self.extra_fields:
            row["domainName"] = ("CORP", "LAB", "DMZ")[client % 3]
            if sid % 5 == 1:  # and, in some rows, more the document does not name
                row["undocumented_recording"] = {"sizeKb": (h >> 28) % 90000, "frames": (h >> 36) % 5000}
        return row

    def _iso(self, ts: float) -> str:
        """Ekran's date-times: milliseconds and an offset, e.g. 2000-01-23T04:56:07.000+00:00
        (with ``timezone``: the server's local time, no offset)."""
        value = dt.datetime.fromtimestamp(ts, self.clock_zone or self.tz)
        text = value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}"
        return text if self.clock_zone is not None else text + _offset(value)

    # ------------------------------------------------------------- selection
    @staticmethod
    def matches(login: float, logout: float | None, start: float | None, end: float | None) -> bool:
        """The document's selection: "started or finished after start" and
        "started or finished before end" (inclusive; open sessions have not finished)."""
        if start is not None and not (login >= start or (logout is not None and logout >= start)):
            return False
        return end is None or login <= end or (logout is not None and logout <= end)

    def select(self, start: float | None, end: float | None) -> list[int]:
        """The sessionIds selected by ``start``/``end``, in sessionId order."""
        key = (start, end, self.version)
        cached = self._selection_cache.get(key)
        if cached is not None:
            return cached
        # Base sessions: logins are in index order, and a closed one lasts at
        # most MAX_DURATION, so only logins in [start - MAX_DURATION, end]
        # can match; sessions closed by advance() are checked one by one.
        lo = 0 if start is None else max(int((start - MAX_DURATION - self.first_ts) / self.step) - 1, 0)
        hi = self.base_count if end is None else min(int((end - self.first_ts) / self.step) + 2, self.base_count)
        ids = []
        for index in range(lo, hi):
            sid = index + 1
            if self.matches(*self.times(sid), start, end):
                ids.append(sid)
        for sid in self.closed_at:
            if sid <= self.base_count and not lo < sid <= hi and self.matches(*self.times(sid), start, end):
                bisect.insort(ids, sid)
        for offset in range(len(self.extra)):
            sid = self.base_count + offset + 1
            if self.matches(*self.times(sid), start, end):
                ids.append(sid)
        if len(self._selection_cache) > 64:
            self._selection_cache.clear()
        self._selection_cache[key] = ids
        return ids

    def open_ids(self) -> list[int]:
        """Sessions open now: base ones still running at generation or stale,
        and new ones, less those advance() closed."""
        recent = max(int((self.created - MAX_DURATION - self.first_ts) / self.step) - 1, 0)
        candidates = set(range(recent + 1, self.base_count + 1))
        candidates.update(range(STALE_EVERY, self.base_count + 1, STALE_EVERY))
        candidates.update(range(self.base_count + 1, self.total + 1))
        return sorted(sid for sid in candidates if self.times(sid)[1] is None)

    def bad_ids(self) -> list[int]:
        if self.bad_every <= 0:
            return []
        return list(range(3, self.total + 1, self.bad_every)) if self.bad_every > 3 else [
            sid for sid in range(1, self.total + 1) if self.is_bad(sid)]

    # ------------------------------------------------------------------ time
    def advance(
        self,
        close: int | None = None,
        new_open: int = 3,
        new_closed: int = 3,
        late: int = 2,
        late_minutes: int = 40,
        now: str | None = None,
    ) -> dict:
        """Time passes: ``close`` open sessions end now (default: every other
        one still open), ``new_open`` and ``new_closed`` sessions appear, and
        ``late`` sessions that ended ``late_minutes`` ago are reported late.
        ``now``: the server's new clock (ISO 8601; default: the wall clock),
        at least a second after the last one."""
        at = dt.datetime.now(dt.timezone.utc) if now is None else dt.datetime.fromisoformat(now)
        if at.tzinfo is None:
            at = at.replace(tzinfo=dt.timezone.utc)
        now_ts = round(max(at.timestamp(), self.clock + 1), 3)
        open_now = self.open_ids()
        chosen = open_now[::2] if close is None else open_now[:close]
        for sid in chosen:
            self.closed_at[sid] = now_ts
        first_new = self.total + 1
        for i in range(new_open):
            self.extra.append((round(now_ts - 60 * (i + 1), 3), None))
        for i in range(new_closed):
            self.extra.append((round(now_ts - 1800 - 60 * i, 3), round(now_ts - 120 - 30 * i, 3)))
        for i in range(late):
            ended = now_ts - late_minutes * 60
            self.extra.append((round(ended - 900 - 60 * i, 3), round(ended - 10 * i, 3)))
        self.clock = now_ts
        self.version += 1
        self._selection_cache.clear()
        return {
            "closed": chosen,
            "new": list(range(first_new, self.total + 1)),
            "clock": self._iso(now_ts),
            "total": self.total,
        }

    def info(self) -> dict:
        start = dt.datetime.combine(
            dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=DEFAULT_DAYS_BACK),
            dt.time(), dt.timezone.utc,
        ).timestamp()
        return {
            "credentials": {"api_token": self.token},
            "expected_counts": {"sessions": len(self.select(start, None))},
            "total_sessions": self.total,
            "open_session_ids": self.open_ids(),
            "bad_duration_ids": self.bad_ids(),
            "first_day": self.first_day.isoformat(),
            "created": self._iso(self.created),
            "clock": self._iso(self.clock),
        }

    # ------------------------------------------------------------------ http
    def handle(self, request: Request) -> Response:
        if request.headers.get(HEADER) != self.token:
            return self.error(401, "Authorization has been denied for this request.")
        if request.path.rstrip("/") != PATH:
            return self.error(404, f"No HTTP resource was found that matches the request URI '{request.path}'.")
        if request.method != "POST":
            return self.error(405, f"The requested resource does not support http method '{request.method}'.")
        try:
            body = json.loads(request.body or b"{}")
        except ValueError:
            return self.error(400, "The request body is not valid JSON.")
        if not isinstance(body, dict):
            return self.error(400, "The request body must be a JSON object.")
        count = body.get("sessionCount", MAX_SESSION_COUNT)
        page = body.get("pageIndex", 0)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return self.error(400, "sessionCount must be an integer from 0 to 1000.")
        if count > MAX_SESSION_COUNT:
            return self.error(400, f"The requested session count ({count}) is more than {MAX_SESSION_COUNT}.")
        if not isinstance(page, int) or isinstance(page, bool) or page < 0:
            return self.error(400, "pageIndex must be an integer from 0 upwards.")
        try:
            start = _parse_time(body.get("start"), self.clock_zone)
            end = _parse_time(body.get("end"), self.clock_zone)
        except ValueError as exc:
            return self.error(400, f"The value '{exc}' is not a valid date/time.")
        ids = self.select(start, end)
        chosen = ids[page * count: (page + 1) * count]
        return Response(200, self._page_body([self.session(sid, start, end) for sid in chosen], len(ids)))

    @staticmethod
    def _page_body(sessions: list[dict], total: int) -> bytes:
        return json.dumps({"sessions": sessions, "totalCount": total}, separators=(",", ":")).encode()

    def error(self, status: int, message: str) -> Response:
        return Response.json({"Message": message}, status=status)

    def malformed_body(self) -> tuple[bytes, str]:
        body = b'{"sessions": [{"duration": "01:02:03.0000000", "sessionId": 7, "loginDate": "2024-01'
        return body, "application/json"


# ---------------------------------------------------------------------- helpers
def _parse_time(value: t.Any, zone: dt.tzinfo | None = None) -> float | None:
    """The document's time formats: "2021-04-01", "2021-04-01T12:00", "2021-04-01T12:00:00"
    (on the server's clock, ``zone``, when no offset is given; UTC by default)."""
    if value is None or value == "":
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (AttributeError, ValueError):
        raise ValueError(value) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone or dt.timezone.utc)
    return parsed.timestamp()


def _timespan(seconds: float, one_digit_hour: bool = False) -> str:
    """A .NET TimeSpan: [d.]hh:mm:ss.fffffff."""
    ticks = max(round(round(seconds, 3) * 10_000_000), 0)
    whole, fraction = divmod(ticks, 10_000_000)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    hour_text = str(hours) if one_digit_hour and not days else f"{hours:02d}"
    text = f"{hour_text}:{minutes:02d}:{secs:02d}.{fraction:07d}"
    return f"{days}.{text}" if days else text


def _offset(value: dt.datetime) -> str:
    offset = value.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _guid(seed: int, client: int) -> str:
    h = f"{_mix(seed * 7919 + client):016x}{_mix(seed * 104729 + client):016x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
