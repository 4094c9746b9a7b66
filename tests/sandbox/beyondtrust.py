"""BeyondTrust Remote Support reporting API
(vendor-docs/beyondtrust-remote-support-reporting-api.txt, API-CONTRACT.md).

- ``POST /oauth2/token``: HTTP Basic ``client_id:client_secret``, form body
  ``grant_type=client_credentials``; answers ``{"access_token", "token_type",
  "expires_in"}``. Tokens expire after ``token_lifetime`` seconds; at most 30
  are valid at once (a 31st silently invalidates the oldest).
- ``GET|POST /api/reporting?generate_report=<Name>&...``: XML in the reporting
  namespace, generated lazily and streamed (chunked). Bad parameters answer
  HTTP 200 with an ``<error>`` element; a missing or expired token answers 401
  with an ``<error>`` element.
- ``generate_report=Archive``: a gzip file, compressed as it is generated.

Every report time is written in ISO 8601 with the appliance's own offset
(``utc_offset_minutes``) and, where the document says so, a ``timestamp``
attribute in UNIX time. ``end_time``+``duration`` (seconds) selects sessions
that ended in ``[end_time, end_time + duration)`` (0: to the present);
``start_time`` selects by start. The ``*_date`` forms take days.

Data is generated from indexes and the seed: base sessions all ended before
the sandbox started, except every ``OPEN_EVERY``-th, which stays open until
``advance()`` closes it (a late arrival: started long ago, ended now), and
every ``ABNORMAL_EVERY``-th, which closed abnormally: its ``<end_time>`` is
empty for ever, so only a ``start_time`` query finds it (``end_time`` returns
"only closed sessions"). Every ``UNACCEPTED_EVERY``-th session was closed by
the customer before a representative accepted it: no ``<primary_rep>``, an
empty ``<rep_list>``, and the survey reports' ``report_type=rep`` filter (by
"the representative who last owned the session") leaves it out.
``advance()`` also adds new sessions (one of them closed abnormally),
team/jump/vault events, a licence peak (a higher one, in the current period)
and one more event archive.

Licence usage: peaks are logged at moments inside the hour; LicenseUsage
groups them by hour, day or month of the appliance's own time zone and answers
each period's highest peak, with the moment it was logged (``timestamp`` and
``datetime``). Event archives: ``model_insert`` rows include every field, and
some of them are blank (``""``), as the document allows. Some rows of every
report and archive carry an element, attribute or key the document does not
name, called ``undocumented_*`` (the taps must keep them in ``extra``); one
kind of event-archive line names its table and id outright, with a key of its
own (a layout the document never shows).

Options beside ``seed``/``scale`` (sessions)/``days``: ``token_lifetime``
(seconds; short ones let tests expire a token mid-sync), ``utc_offset_minutes``
(the appliance's offset), ``*_events_per_day`` (team, Jump Item, Vault),
``archive_count`` and ``archive_events`` (event archives of 10 minutes and
their lines), ``archive_odd_lines`` (each event archive ends with lines in
shapes the document does not describe: ``ODD_LINES``), ``state_rows``, ``state_padding`` and
``state_null_tables`` (state archives: one gzip JSON object of tables -> ids ->
fields, every 30 minutes over the event archives' span, generated as sent; a
table with no data is null; ``advance(state_archive=True,
retire_state_rows={table: [ids]})`` writes a new one without those rows),
``event_padding`` (bytes of chat text per event: large answers
cheaply), ``reject_reports`` (reports answered with an ``<error>``, as for an
account without the permission), ``xml_namespace`` (a wrong one breaks the
contract on purpose).
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import json
import random
import threading
import time
import typing as t
import zlib
from urllib.parse import parse_qs
from xml.sax.saxutils import escape, quoteattr

from tests.sandbox.core import Request, Response, VendorApp

NS = "https://www.beyondtrust.com/namespaces/API/reporting"
XML_HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'
XML_TYPE = "text/xml; charset=utf-8"
MAX_TOKENS = 30
OPEN_EVERY = 50
ABNORMAL_EVERY, ABNORMAL_AT = 40, 7  # i % 40 == 7: closed abnormally (never i % 50 == 49)
UNACCEPTED_EVERY, UNACCEPTED_AT = 30, 21  # i % 30 == 21: closed before a rep accepted it
MAX_SESSION_SECONDS = 2 * 3600
TEAMS = ["Tier 1", "Tier 2", "Network & Security", "Field Ops"]
REPS = 12
OSES = ["Windows 11 Enterprise", "macOS 14.5", "Ubuntu 22.04", "Windows 10 Pro"]
COMPANIES = ["Acme Corp", "Globex", "Initech", "Umbrella <EU>", "Stark & Sons"]
SESSION_EVENTS = [
    "Session Start", "Customer Joined", "Conference Member Added", "Chat Message",
    "File Upload", "System Information Retrieved", "Chat Message", "Session End",
]
TEAM_EVENTS = ["Conference Member Added", "Conference Member Departed", "Chat Message",
               "File Shared", "Team Conference Started"]
JUMP_EVENTS = ["Jump Item Created", "Jump Item Modified", "Jump Item Session Started", "Jump Item Deleted"]
JUMP_TYPES = ["jump_client", "local_jump", "remote_rdp", "shell_jump", "protocol_tunnel"]
VAULT_EVENTS = ["Account Created", "Credentials Checked Out", "Credentials Checked In",
                "Password Changed", "Password Rotation Failed", "Credentials Used"]
ARCHIVE_TABLES = {
    "customer_client": ["client_type", "connected", "created_timestamp", "elevated", "hostname",
                        "operating_system", "private_ip", "public_ip", "support_session_id"],
    "queue": ["code_name", "created_timestamp", "name", "support_team_id", "type"],
    "representative": ["connected", "console_in_focus", "created_timestamp", "hostname",
                       "operating_system", "private_display_name", "private_ip",
                       "public_display_name", "public_ip", "queue_id", "routing_available",
                       "routing_busy", "routing_enabled", "routing_idle",
                       "selected_support_session_id", "skill_code_names", "type", "user_id",
                       "username"],
    "representative_queue": ["created_timestamp", "queue_id", "representative_id", "role"],
    "representative_support_session": ["created_timestamp", "representative_id",
                                       "selected_support_session_service_tool",
                                       "support_session_id"],
    "representative_support_session_tool": ["created_timestamp", "representative_id",
                                            "support_session_id", "tool"],
    "support_session": ["created_timestamp", "customer_company", "customer_company_code",
                        "customer_description", "customer_name", "estimated_pickup_timestamp",
                        "issue_code_name", "issue_description", "lsid", "primary_team_queue_id",
                        "priority", "public_site_id", "public_site_name",
                        "queue_entry_timestamp", "queue_id", "start_method"],
    "support_session_attribute": ["code_name", "created_timestamp", "support_session_id", "value"],
    "support_session_skill": ["code_name", "created_timestamp", "support_session_id"],
    # not in the document: the tap must keep it anyway
    "representative_status": ["created_timestamp", "status"],
}
# The kinds of event-archive lines, as a fixed cycle so counts are arithmetic.
ARCHIVE_CYCLE = (
    [("model_insert", tb) for tb in ARCHIVE_TABLES]
    + [("model_update", tb) for tb in ("support_session", "representative", "customer_client",
                                       "queue", "representative_support_session")]
    + [("model_delete", "representative_support_session_tool"), ("model_delete", "support_session")]
    + [("session_event", name) for name in ("chat_message", "file_upload", "session_note_added",
                                            "screen_recording", "customer_exit_survey")]
)
TRUNCATE_EVERY = 4  # one archive in this many holds a truncate_model line (the appliance restarted)
BLANK_EVERY = 3  # every third model_insert line has blank fields ("created even if blank")


class RawLine(str):
    """An event-archive line written as is (not JSON)."""


# Lines in shapes the document does not describe (archive_odd_lines=True), and
# the stream each must reach: whole to the catch-all, or the row with the
# values that are not of their type kept in its extra.
ODD_LINES: list[tuple[t.Any, str]] = [
    ({"type": "model_insert", "timestamp": 0, "data": [{"support_session": {}}]}, "archive_other_events"),
    ({"type": "model_update", "timestamp": 0, "data": {"representative": [{"connected": 1}]}},
     "archive_other_events"),
    ({"type": "model_update", "timestamp": 0, "data": {"queue": {"5": ["code", "name"]}}}, "archive_other_events"),
    ({"type": "model_insert", "timestamp": 0}, "archive_other_events"),
    (["not", "an", "object"], "archive_other_events"),
    (RawLine("{not json"), "archive_other_events"),
    ({"type": "model_insert", "timestamp": 0, "data": {"customer_client": {"9": {
        "connected": "maybe", "elevated": "TRUE", "support_session_id": "abc", "created_timestamp": "soon",
        "hostname": "odd-host", "tags": ["a", "b"]}}}}, "archive_customer_client"),
]
ARCHIVE_MINUTES = 10
DAY = 86400


class App(VendorApp):
    name = "beyondtrust"

    def __init__(
        self,
        *,
        seed: int = 1,
        scale: int = 1000,
        days: int = 30,
        client_id: str = "sandbox-beyondtrust-client",
        client_secret: str = "sandbox-beyondtrust-secret",
        token_lifetime: float = 3600,
        utc_offset_minutes: int = -300,
        team_events_per_day: int = 40,
        jump_events_per_day: int = 20,
        vault_events_per_day: int = 10,
        archive_count: int = 12,
        archive_events: int = 40,
        archive_odd_lines: bool = False,
        state_rows: int = 12,
        state_padding: int = 0,
        state_null_tables: t.Sequence[str] = ("support_session_skill",),
        event_padding: int = 0,
        reject_reports: t.Sequence[str] = (),
        xml_namespace: str = NS,
        now: float | None = None,
    ) -> None:
        self.seed = seed
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime = float(token_lifetime)
        self.tz = dt.timezone(dt.timedelta(minutes=utc_offset_minutes))
        self.event_padding = event_padding
        # reports the API account may not run: answered with <error> (HTTP 200)
        self.reject_reports = set(reject_reports)
        # the namespace report answers declare (a wrong one: a broken contract the tap must catch)
        self.xmlns = f' xmlns="{xml_namespace}"' if xml_namespace else ""
        self.init_now = int(now if now is not None else time.time())
        today = dt.datetime.fromtimestamp(self.init_now, dt.UTC).date()
        self.first_ts = int(dt.datetime.combine(today - dt.timedelta(days=days - 1), dt.time(),
                                                dt.UTC).timestamp())
        self.base_count = scale
        span = max(self.init_now - MAX_SESSION_SECONDS - 120 - self.first_ts, 60)
        self._step = span / max(scale, 1)
        # late and new sessions: index -> (start, end); open base sessions closed by advance()
        self.closed_at: dict[int, int] = {}
        self.extra_sessions: list[tuple[int, int | None]] = []
        self._lsid_index: dict[str, int] = {}
        self._lock = threading.Lock()
        self.tokens: dict[str, float] = {}  # token -> expiry, oldest first
        self.tokens_issued = 0
        # timed event families: base counts spread over [first_ts, init_now - 60)
        self.families = {
            "team": _Family(team_events_per_day * days, self.first_ts, self.init_now - 60),
            "jump": _Family(jump_events_per_day * days, self.first_ts, self.init_now - 60),
            "vault": _Family(vault_events_per_day * days, self.first_ts, self.init_now - 60),
        }
        self.extra_peaks: list[tuple[int, int]] = []  # (moment, licences) added by advance()
        last_archive_end = (self.init_now // 600) * 600 - 1200
        self.archive_slots = [last_archive_end - 600 * (archive_count - k)
                              for k in range(archive_count)]  # interval start times
        self.archive_events = archive_events
        self.archive_odd_lines = archive_odd_lines
        # state archives: every 30 minutes over the span of the event archives, fixed at start
        # (advance(state_archive=True) adds one); each holds state_rows rows per documented
        # table (the same ids in each), none for the null tables, 3 of a table the document does
        # not name; state_padding pads one text field of each row (large archives cheaply)
        self.state_slots: list[int] = []
        if self.archive_slots:
            first, last = self.archive_slots[0], self.archive_slots[-1]
            self.state_slots = list(range((first + 1799) // 1800 * 1800, last + 1, 1800))
        self.state_rows = state_rows
        self.state_padding = state_padding
        self.state_null_tables = set(state_null_tables)
        self.retired_state_rows: dict[str, set[int]] = {}
        self.state_downloads: list[tuple[str, int]] = []
        self.days = days
        self.name_suffix = ""  # names shown "as they currently appear" (team activity, Jump Groups)

    # ------------------------------------------------------------ sessions
    @property
    def session_total(self) -> int:
        return self.base_count + len(self.extra_sessions)

    def session_times(self, i: int) -> tuple[int, int | None]:
        """(start, end) of session ``i``; end None while it is still open."""
        if i >= self.base_count:
            return self.extra_sessions[i - self.base_count]
        start = int(self.first_ts + (i + 0.5) * self._step)
        rng = random.Random(self.seed * 7919 + i)
        duration = rng.randrange(60, MAX_SESSION_SECONDS)
        if i % OPEN_EVERY == OPEN_EVERY - 1:
            return start, self.closed_at.get(i)
        if self.closed_abnormally(i):
            return start, None
        return start, start + duration

    def closed_abnormally(self, i: int) -> bool:
        """Closed without an end time: it never ends, so no end_time query finds it."""
        if i >= self.base_count:
            return self.extra_sessions[i - self.base_count][1] is None
        return i % ABNORMAL_EVERY == ABNORMAL_AT

    def accepted(self, i: int) -> bool:
        """False: the customer closed the session before a representative accepted it."""
        return i % UNACCEPTED_EVERY != UNACCEPTED_AT

    def _sessions_ended_in(self, lo: int, hi: int) -> t.Iterator[int]:
        """Indexes of closed sessions with lo <= end < hi, in lseq order."""
        first = bisect.bisect_left(range(self.base_count), lo - MAX_SESSION_SECONDS,
                                   key=lambda i: self.session_times(i)[0])
        for i in sorted(self.closed_at):  # long sessions closed late, started before the scan
            if i < first and lo <= self.closed_at[i] < hi:
                yield i
        for i in range(first, self.base_count):
            start, end = self.session_times(i)
            if start >= hi:
                break
            if end is not None and lo <= end < hi:
                yield i
        for k, (_, end) in enumerate(self.extra_sessions):
            if end is not None and lo <= end < hi:
                yield self.base_count + k

    def _sessions_started_in(self, lo: int, hi: int) -> t.Iterator[int]:
        first = bisect.bisect_left(range(self.base_count), lo, key=lambda i: self.session_times(i)[0])
        for i in range(first, self.base_count):
            if self.session_times(i)[0] >= hi:
                break
            yield i
        for k, (start, _) in enumerate(self.extra_sessions):
            if lo <= start < hi:
                yield self.base_count + k

    def lsid(self, i: int) -> str:
        return hashlib.md5(f"{self.seed}:{i}".encode()).hexdigest()

    def lsid_index(self) -> dict[str, int]:
        """lsid -> session index, extended as sessions are added."""
        with self._lock:
            for i in range(len(self._lsid_index), self.session_total):
                self._lsid_index[self.lsid(i)] = i
            return self._lsid_index

    def session_people(self, i: int) -> tuple[int, int]:
        """(rep index, team index) of session ``i``."""
        rep = (i * 7 + self.seed) % REPS
        return rep, rep % len(TEAMS)

    def has_survey(self, i: int, kind: str) -> bool:
        return i % 3 == 0 if kind == "cust" else i % 4 == 1 and self.accepted(i)

    def _iso(self, ts: float) -> str:
        return dt.datetime.fromtimestamp(ts, self.tz).isoformat()

    def _time_el(self, tag: str, ts: int | None) -> str:
        if ts is None:
            return f"<{tag}></{tag}>"
        return f'<{tag} timestamp="{ts}">{self._iso(ts)}</{tag}>'

    def _customer_xml(self, i: int, rng: random.Random) -> str:
        company = COMPANIES[i % len(COMPANIES)]
        return (
            f'<customer gsnumber="{100 + i % 50}"><username>customer{i}</username>'
            f"<public_ip>198.51.100.{i % 250 + 1}</public_ip><private_ip>192.0.2.{i % 250 + 1}</private_ip>"
            f"<hostname>HOST-{i:06d}</hostname><os>{OSES[i % len(OSES)]}</os><primary_cust>1</primary_cust>"
            f"<info><name>Customer {i}</name><company>{escape(company)}</company>"
            f"<company_code>C{i % 40}</company_code><issue>{i % 9 + 1}</issue>"
            f"<details>Printer #{rng.randrange(100)} is offline &amp; beeping</details></info></customer>"
        )

    def _rep_xml(self, rep: int, primary: bool, seconds: int) -> str:
        return (
            f'<representative gsnumber="{rep + 1}" id="{rep + 1}"><username>rep{rep + 1}</username>'
            f"<display_name>Rep {rep + 1}</display_name><public_display_name>Alex {rep + 1}</public_display_name>"
            f"<private_display_name>Rep {rep + 1}</private_display_name><display_number>{rep + 1}</display_number>"
            f"<public_ip>203.0.113.{rep + 1}</public_ip><private_ip>192.0.2.{rep + 1}</private_ip>"
            f"<hostname>REP-{rep + 1}</hostname><os>{OSES[rep % len(OSES)]}</os>"
            f"<session_owner>{int(primary)}</session_owner><primary_rep>{int(primary)}</primary_rep>"
            f"<seconds_involved>{seconds}</seconds_involved>"
            + ("<invited>1</invited>" if rep == REPS - 1 else "")
            + "</representative>"
        )

    def _survey_xml(self, i: int, kind: str) -> str:
        tag = "cust_exit_survey" if kind == "cust" else "rep_exit_survey"
        return (f"<{tag}><question id=\"1\"><name>satisfied</name><answer>{i % 5 + 1}</answer></question>"
                f"<comments>Thanks {i}</comments></{tag}>")

    def session_events(self, i: int, start: int, end: int | None) -> t.Iterator[tuple[int, str, str]]:
        """(timestamp, event_type, inner xml) of session ``i``'s events."""
        rng = random.Random(self.seed * 104729 + i)
        count = 3 + rng.randrange(6)
        last = end if end is not None else start + 60
        rep, _ = self.session_people(i)
        pad = "x" * self.event_padding
        for k in range(count):
            ts = start + (last - start) * k // max(count, 1)
            kind = SESSION_EVENTS[0] if k == 0 else (
                SESSION_EVENTS[-1] if k == count - 1 and end is not None else SESSION_EVENTS[1 + rng.randrange(6)])
            system = '<performed_by gsnumber="0" type="system">System</performed_by>'
            by_rep = f'<performed_by gsnumber="{rep + 1}" type="representative">Rep {rep + 1}</performed_by>'
            to_cust = f'<destination gsnumber="{100 + i % 50}" type="customer">Customer {i}</destination>'
            if kind == "Chat Message":
                if k % 4 == 3:
                    body = base64.b64encode(f"binary \x00\x01 chat {i}.{k}".encode()).decode()
                    inner = f"{by_rep}{to_cust}<encoded_body>{body}</encoded_body>"
                else:
                    inner = f"{by_rep}{to_cust}<body>Hello %name% &lt;{i}.{k}&gt; {pad}</body>"
            elif kind == "File Upload":
                inner = (f"{by_rep}{to_cust}<filename>report-{i}-{k}.txt</filename>"
                         f"<filesize>{1000 + k}</filesize>"
                         f'<files><file name="report-{i}-{k}.txt" size="{1000 + k}"/></files>')
            elif kind == "System Information Retrieved":
                inner = (f"{system}<system_information><category name=\"Drives\">"
                         "<description><field>Drive</field><field>Type</field><field>Percent Used</field></description>"
                         f"<data><row><field>C:\\</field><field>Local Disk</field><field>{k * 7 % 100}%</field></row>"
                         "<row><field>D:\\</field><field>Removable</field><field>3%</field></row></data>"
                         "</category></system_information>")
            elif kind == "Conference Member Added":
                inner = (f"{system}<data><value name=\"name\" value=\"Rep {rep + 1}\"/>"
                         f"<value name=\"user_id\" value=\"{rep + 1}\"/>"
                         f"<value name=\"support_teams\" value=\";{escape(TEAMS[rep % len(TEAMS)])}\"/></data>")
            else:
                inner = f"{system}<body>{kind} {pad if kind == 'Session Start' else ''}</body>"
            yield ts, kind, inner

    def session_xml(self, i: int) -> str:
        start, end = self.session_times(i)
        rng = random.Random(self.seed * 15485863 + i)
        rep, team = self.session_people(i)
        lsid = self.lsid(i)
        parts = [f'<session lsid="{lsid}"><session_type>support</session_type><lseq>{i + 1}</lseq>',
                 self._time_el("start_time", start), self._time_el("end_time", end)]
        length = (end - start) if end is not None else 0
        parts.append(f"<duration>{length // 3600:02d}:{length % 3600 // 60:02d}:{length % 60:02d}</duration>")
        parts.append(f'<public_site id="{i % 2 + 1}">{"Default" if i % 2 == 0 else "Partners"}</public_site>')
        if i % 5 == 0:
            parts.append(f'<jumpoint id="{i % 3 + 1}">Jumpoint {i % 3 + 1}</jumpoint>')
        parts.append(f"<external_key>TICKET-{i}</external_key>")
        parts.append('<custom_attributes><custom_attribute display_name="Ticket Priority" code_name="ticket_priority">'
                     f"P{i % 4 + 1}</custom_attribute></custom_attributes>")
        base = "https://support.example.com/session_download"
        if end is not None:
            parts.append(f"<session_chat_view_url>{base}?lsid={lsid}&amp;view=1</session_chat_view_url>"
                         f"<session_chat_download_url>{base}?lsid={lsid}</session_chat_download_url>")
            if i % 2 == 0:
                parts.append(f"<session_recording_view_url>{base}?lsid={lsid}&amp;rec=view</session_recording_view_url>"
                             f"<session_recording_download_url>{base}?lsid={lsid}&amp;rec=1</session_recording_download_url>")
        if i % 7 == 0:
            parts.append("<show_my_screen_recordings>" + "".join(
                f'<show_my_screen_recording instance="{n}"><download_url>{base}?lsid={lsid}&amp;sms={n}</download_url>'
                f"<view_url>{base}?lsid={lsid}&amp;sms={n}&amp;view=1</view_url></show_my_screen_recording>"
                for n in range(2)) + "</show_my_screen_recordings>")
        if i % 6 == 0:
            parts.append('<command_shell_recordings><command_shell_recording instance="0">'
                         f"<download_url>{base}?lsid={lsid}&amp;shell=0</download_url>"
                         f"<view_url>{base}?lsid={lsid}&amp;shell=0&amp;view=1</view_url></command_shell_recording></command_shell_recordings>")
        parts.append(f"<file_transfer_count>{i % 3}</file_transfer_count><file_move_count>{i % 2}</file_move_count>"
                     f"<file_delete_count>0</file_delete_count>")
        parts.append(f'<primary_customer gsnumber="{100 + i % 50}">Customer {i}</primary_customer>')
        if self.accepted(i):
            parts.append(f'<primary_rep gsnumber="{rep + 1}" id="{rep + 1}">Rep {rep + 1}</primary_rep>')
        parts.append(f'<primary_team id="{team + 1}">{escape(TEAMS[team])}</primary_team>')
        parts.append("<customer_list>" + self._customer_xml(i, rng) + "</customer_list>")
        reps = self._rep_xml(rep, True, length) if self.accepted(i) else ""
        if i % 4 == 0 and self.accepted(i):
            reps += self._rep_xml((rep + 1) % REPS, False, length // 3)
        parts.append(f"<rep_list>{reps}</rep_list>")
        parts.append(f'<team_list><team id="{team + 1}" primary_team="1">{escape(TEAMS[team])}</team></team_list>')
        if end is not None and self.has_survey(i, "cust"):
            parts.append(f"<cust_survey_list>{self._survey_xml(i, 'cust')}</cust_survey_list>")
        if end is not None and self.has_survey(i, "rep"):
            parts.append(f"<rep_survey_list>{self._survey_xml(i, 'rep')}</rep_survey_list>")
        if i % 10 == 3:
            parts.append(f"<priority_note>undocumented {i}</priority_note>")  # unknown to the doc
            parts.append(f"<undocumented_escalation>level {i % 3}</undocumented_escalation>")
        parts.append("<session_details>")
        for k, (ts, kind, inner) in enumerate(self.session_events(i, start, end)):
            odd = f' undocumented_origin="console-{k}"' if k == 0 else ""
            parts.append(f'<event timestamp="{self._iso(ts)}" event_type="{kind}"{odd}>{inner}</event>')
        parts.append("</session_details></session>")
        return "".join(parts)

    def session_event_count(self, i: int) -> int:
        return 3 + random.Random(self.seed * 104729 + i).randrange(6)

    # ------------------------------------------------------------ timed families
    def _family_times(self, name: str, lo: int, hi: int) -> t.Iterator[tuple[int, int]]:
        fam = self.families[name]
        for j in fam.indexes_between(lo, hi):
            yield j, fam.time(j)

    def team_event_xml(self, j: int, ts: int) -> tuple[int, str]:
        rng = random.Random(self.seed * 31 + j)
        team = j % len(TEAMS)
        kind = TEAM_EVENTS[rng.randrange(len(TEAM_EVENTS))]
        rep = (team + len(TEAMS) * rng.randrange(3)) % REPS
        parts = [f'<event timestamp="{self._iso(ts)}" event_type="{kind}">',
                 f'<performed_by gsnumber="{rep + 1}" type="representative">Rep {rep + 1}</performed_by>']
        if kind == "Chat Message":
            other = (rep + 1) % REPS + 1
            parts.append(f'<destinations><destination gsnumber="{other}">Rep {other}</destination></destinations>')
            if j % 5 == 0:
                encoded = base64.b64encode(f"bin{j}".encode() + bytes([1])).decode()
                parts.append(f"<encoded_body>{encoded}</encoded_body>")
            else:
                parts.append(f"<body>team chat {j}</body>")
        elif kind == "File Shared":
            parts.append(f'<files><file name="notes-{j}.txt" size="{500 + j}"/></files>')
        else:
            parts.append(f'<data><value name="user_id" value="{rep + 1}"/>'
                         f'<value name="support_teams" value=";{escape(TEAMS[team])}"/></data>')
        if j % 3 == 0:
            parts.append(f"<undocumented_channel>queue-{team + 1}</undocumented_channel>")
        parts.append("</event>")
        return team, "".join(parts)

    def jump_event_parts(self, j: int) -> tuple[int, str, int, str]:
        """(Jump Item id, group type, group id, event type) of Jump Item event ``j``."""
        item = random.Random(self.seed * 37 + j).randrange(1, 30)
        return item, "shared" if item % 3 else "personal", item % 4 + 1, JUMP_EVENTS[j % len(JUMP_EVENTS)]

    def jump_event_xml(self, j: int, ts: int) -> str:
        item, group, _, kind = self.jump_event_parts(j)
        data = f"lsid={self.lsid(j)}" if kind == "Jump Item Session Started" else f"changed by job {j}"
        return (f"<jump_item_event>{self._time_el('timestamp', ts)}<jump_item>{item}</jump_item>"
                f"<jump_item_name>Server {item}</jump_item_name><event_type>{kind}</event_type>"
                f"<jump_item_type>{JUMP_TYPES[item % len(JUMP_TYPES)]}</jump_item_type>"
                f'<jump_group type="{group}" id="{item % 4 + 1}">'
                f"Group {item % 4 + 1}{escape(self.name_suffix)}</jump_group>"
                f'<performed_by type="user" id="{item % REPS + 1}">Rep {item % REPS + 1}</performed_by>'
                f"<data>{escape(data)}</data>"
                + (f"<undocumented_tag>tier-{item % 3}</undocumented_tag>" if j % 3 == 0 else "")
                + "</jump_item_event>")

    def vault_event_xml(self, j: int, ts: int) -> str:
        kind = VAULT_EVENTS[j % len(VAULT_EVENTS)]
        actor = '<performed_by type="system" id="0">System</performed_by>' if j % 3 == 0 else \
            f'<performed_by type="user" id="{j % REPS + 1}">Rep {j % REPS + 1}</performed_by>'
        odd = f"<undocumented_vault_region>r{j % 2}</undocumented_vault_region>" if j % 4 == 0 else ""
        # the document names "Account" (the Vault account's id) without saying element or attribute: both
        if j % 2:
            return (f'<vault_account_activity timestamp="{self._iso(ts)}" event_type="{kind}" '
                    f'Account="{j % 25 + 1}">{actor}<data>detail {j}</data>{odd}</vault_account_activity>')
        return (f'<vault_account_activity timestamp="{self._iso(ts)}" event_type="{kind}">'
                f"<Account>{j % 25 + 1}</Account>{actor}<data>detail {j}</data>{odd}</vault_account_activity>")

    # ------------------------------------------------------------ licence usage
    def peaks(self, lo: int, hi: int) -> list[tuple[int, int]]:
        """(moment, licences in use) of the peaks logged in [lo, hi): about one
        hour in seven before the sandbox started has one, inside the hour."""
        out = []
        for h in range(max(lo, self.first_ts) // 3600, min(hi // 3600 + 1, self.init_now // 3600)):
            rng = random.Random(self.seed * 53 + h)
            if rng.random() < 0.15:
                moment = h * 3600 + 60 + rng.randrange(3480)
                if lo <= moment < hi:
                    out.append((moment, 9 + rng.randrange(2)))
        out += [(m, n) for m, n in self.extra_peaks if lo <= m < hi]
        return sorted(out)

    def group_start(self, ts: int, group_by: str) -> int:
        """The start of the hour, day or month of ``ts`` in the appliance's time zone."""
        d = dt.datetime.fromtimestamp(ts, self.tz)
        if group_by == "hour":
            d = d.replace(minute=0, second=0)
        elif group_by == "day":
            d = d.replace(hour=0, minute=0, second=0)
        else:
            d = d.replace(day=1, hour=0, minute=0, second=0)
        return int(d.timestamp())

    # ------------------------------------------------------------ archives
    def archive_slot(self, date: str, index: int, kind: str = "event") -> int | None:
        day = int(dt.datetime.combine(dt.date.fromisoformat(date), dt.time(), dt.UTC).timestamp())
        minutes = ARCHIVE_MINUTES if kind == "event" else 30
        start = day + (index - 1) * minutes * 60
        if kind == "event":
            return start if start in set(self.archive_slots) else None
        return start if start in set(self.state_slots) else None

    # the document: "a single JSON object ... If a table does not have any data, its value is null"
    def state_tables(self) -> list[str]:
        return list(ARCHIVE_TABLES)  # the documented tables and representative_status

    def state_row_ids(self, table: str) -> list[int]:
        if table in self.state_null_tables:
            return []
        count = 3 if table == "representative_status" else self.state_rows
        retired = self.retired_state_rows.get(table, set())
        return [i for i in range(1, count + 1) if i not in retired]

    def state_row(self, table: str, row_id: int, slot: int) -> dict:
        fields: dict[str, t.Any] = {}
        padded = False
        for f in ARCHIVE_TABLES[table]:
            if f.endswith("_timestamp"):
                fields[f] = slot - 60 * row_id
            elif f in ("connected", "elevated", "console_in_focus") or f.startswith("routing_"):
                fields[f] = row_id % 2
            elif f.endswith("_id") or f == "priority":
                fields[f] = row_id % 7 + 1
            else:
                fields[f] = f"{f}-{row_id}"
                if self.state_padding and not padded:
                    fields[f] += "x" * self.state_padding
                    padded = True
        if row_id % 4 == 1:
            fields["undocumented_shard"] = f"s{row_id % 3}"  # a field the document does not name
        return fields

    def state_archive_chunks(self, slot: int) -> t.Iterator[bytes]:
        """The state archive's JSON object, generated as it is sent."""
        yield b"{"
        for k, table in enumerate(self.state_tables()):
            sep = "," if k else ""
            if table in self.state_null_tables:
                yield f'{sep}"{table}":null'.encode()
                continue
            parts = [f'{sep}"{table}":{{']
            size = 0
            for n, row_id in enumerate(self.state_row_ids(table)):
                row = ("," if n else "") + f'"{row_id}":' + json.dumps(self.state_row(table, row_id, slot),
                                                                       separators=(",", ":"))
                parts.append(row)
                size += len(row)
                if size >= 1 << 16:
                    yield "".join(parts).encode()
                    parts, size = [], 0
            parts.append("}")
            yield "".join(parts).encode()
        yield b"}"

    def archive_lines(self, slot: int) -> t.Iterator[dict]:
        truncate_at = min(17, self.archive_events - 1) if (slot // 600) % TRUNCATE_EVERY == 0 else -1
        for n in range(self.archive_events):
            ts = slot + n * 600 // max(self.archive_events, 1)
            if n == truncate_at:
                yield {"type": "truncate_model", "timestamp": ts, "undocumented_reason": "service restart"}
                continue
            kind, name = ARCHIVE_CYCLE[n % len(ARCHIVE_CYCLE)]
            row_id = n + 1
            if kind == "session_event":
                yield {"type": "session_event", "timestamp": ts, "lsid": self.lsid(n), "name": name,
                       "data": {"body": f"archived {n}", "performed_by": {"gsnumber": 1, "type": "representative"},
                                "destination": {"gsnumber": 100, "type": "customer"}, "size": n},
                       "undocumented_node": f"node-{n % 3}"}
                continue
            if kind == "model_delete":
                yield {"type": kind, "timestamp": ts, "data": {name: {str(row_id): None}}}
                continue
            fields = {}
            for f in ARCHIVE_TABLES[name]:
                if f.endswith("_timestamp"):
                    fields[f] = ts - 30
                elif f in ("connected", "elevated", "console_in_focus") or f.startswith("routing_"):
                    fields[f] = n % 2
                elif f.endswith("_id") or f in ("priority",):
                    fields[f] = n % 7 + 1
                else:
                    fields[f] = f"{f}-{n}"
            if kind == "model_update":
                fields = dict(list(fields.items())[:2])
            elif (n // len(ARCHIVE_CYCLE)) % BLANK_EVERY == 1:  # all fields, some of them blank
                fields = {f: "" if k % 3 == 1 else v for k, (f, v) in enumerate(fields.items())}
            if kind == "model_insert" and (n // len(ARCHIVE_CYCLE)) % 2 == 0:
                fields["undocumented_revision"] = n  # a field the document does not name, in the row
            if kind == "model_update" and name == "queue":
                # one row per line, named outright, with a key of its own: a layout the document never shows
                yield {"type": kind, "timestamp": ts, "table": name, "id": row_id, "data": fields,
                       "undocumented_source": "replica"}
                continue
            yield {"type": kind, "timestamp": ts, "data": {name: {str(row_id): fields}},
                   **({"undocumented_sequence": n} if n % 3 == 0 else {})}

    def archive_all_lines(self, slot: int) -> t.Iterator[t.Any]:
        yield from self.archive_lines(slot)
        if self.archive_odd_lines:
            for line, _ in ODD_LINES:
                yield {**line, "timestamp": slot + 599} if isinstance(line, dict) else line

    def archive_line_counts(self, slot: int) -> dict[str, int]:
        """Lines per (type, table/name) in the archive starting at ``slot``."""
        counts: dict[str, int] = {}
        for line in self.archive_lines(slot):
            if line["type"] == "truncate_model":
                key = "truncate_model"
            elif line["type"] == "session_event":
                key = "session_event"
            else:
                key = line.get("table") or next(iter(line["data"]))
            counts[key] = counts.get(key, 0) + 1
        return counts

    # ------------------------------------------------------------ time passes
    def advance(self, new: int = 5, abnormal: int = 1, state_archive: bool = False,
                retire_state_rows: dict[str, list[int]] | None = None, **_: t.Any) -> dict:
        """``state_archive``: a new state archive is written (the last event archive's time, on
        the half hour); ``retire_state_rows`` (table -> ids): those rows are gone from every
        state archive from now on (a representative logged out, a session ended)."""
        now = int(time.time())
        with self._lock:
            closed = [i for i in range(OPEN_EVERY - 1, self.base_count, OPEN_EVERY) if i not in self.closed_at]
            for i in closed:
                self.closed_at[i] = now
            for k in range(new):
                self.extra_sessions.append((now - 600 - k, now))
            for k in range(abnormal):  # started a while ago, closed abnormally: no end time
                self.extra_sessions.append((now - 1200 - k, None))
            for fam in self.families.values():
                fam.extra += [now - 1] * 3
            self.extra_peaks.append((now - 1, 11))  # the current period's new peak
            if self.archive_slots:
                self.archive_slots.append(self.archive_slots[-1] + 600)
            if state_archive:
                last = self.state_slots[-1] if self.state_slots else self.archive_slots[-1] // 1800 * 1800 - 1800
                self.state_slots.append(last + 1800)
            for table, ids in (retire_state_rows or {}).items():
                self.retired_state_rows.setdefault(table, set()).update(int(i) for i in ids)
        return {"closed": len(closed), "new": new, "abnormal": abnormal, "now": now}

    def rename_teams_and_groups(self, suffix: str) -> None:
        """Rename every team and Jump Group: reports show their names as they are now."""
        self.name_suffix = suffix

    def expected_counts(self) -> dict[str, int]:
        closed = [i for i in range(self.session_total) if self.session_times(i)[1] is not None]
        summary = set()
        for i in closed:
            end = self.session_times(i)[1]
            rep, team = self.session_people(i)
            if self.accepted(i):
                summary.add(("rep", rep, end // DAY))
            summary.add(("team", team, end // DAY))
            summary.add(("site", i % 2, end // DAY))
        team_events = sum(1 for _ in self._family_times("team", 0, 1 << 40))
        teams = {j % len(TEAMS) for j, _ in self._family_times("team", 0, 1 << 40)}
        peaks = self.peaks(0, 1 << 40)
        everyone = range(self.session_total)  # ended, running or closed abnormally: each once
        counts = {
            "support_sessions": len(everyone),
            "support_session_events": sum(self.session_event_count(i) for i in everyone),
            "support_session_listing": len(everyone),
            "support_session_summary": len(summary),
            "license_usage": len({self.group_start(m, "day") for m, _ in peaks}),
            "jump_items": sum(1 for _ in self._family_times("jump", 0, 1 << 40)),
            "support_teams": len(teams),
            "team_activity": team_events,
            "customer_exit_surveys": sum(1 for i in closed if self.has_survey(i, "cust")),
            "rep_exit_surveys": sum(1 for i in closed if self.has_survey(i, "rep")),
            "vault_account_activity": sum(1 for _ in self._family_times("vault", 0, 1 << 40)),
        }
        counts["archive_listing"] = len(self.archive_slots) + len(self.state_slots)
        counts["event_archives"] = len(self.archive_slots)
        lines: dict[str, int] = {}
        for slot in self.archive_slots:
            for key, n in self.archive_line_counts(slot).items():
                lines[key] = lines.get(key, 0) + n
        for table in ARCHIVE_TABLES:
            if table != "representative_status":
                counts[f"archive_{table}"] = lines.get(table, 0)
        counts["archive_session_events"] = lines.get("session_event", 0)
        counts["archive_truncate_events"] = lines.get("truncate_model", 0)
        counts["archive_other_events"] = lines.get("representative_status", 0)
        if self.archive_odd_lines:
            for _, stream in ODD_LINES:
                counts[stream] += len(self.archive_slots)
        # state archives (state_archives: latest): the newest one, a row per row of each table
        counts["state_archives"] = 1 if self.state_slots else 0
        for table in self.state_tables():
            stream = "state_other_tables" if table == "representative_status" else f"state_{table}"
            counts[stream] = len(self.state_row_ids(table)) if self.state_slots else 0
        return counts

    def info(self) -> dict:
        return {
            "credentials": {"client_id": self.client_id, "client_secret": self.client_secret},
            "expected_counts": self.expected_counts(),
            "tokens_issued": self.tokens_issued,
            "open_sessions": [self.lsid(i) for i in range(OPEN_EVERY - 1, self.base_count, OPEN_EVERY)
                              if i not in self.closed_at],
            "abnormal_sessions": [self.lsid(i) for i in range(self.session_total) if self.closed_abnormally(i)],
            "first_ts": self.first_ts,
            "init_now": self.init_now,
            "archive_slots": list(self.archive_slots),
            "state_slots": list(self.state_slots),
            "state_downloads": list(self.state_downloads),
        }

    # ------------------------------------------------------------ http
    def error(self, status: int, message: str) -> Response:
        body = XML_HEAD + f'<error xmlns="{NS}">{escape(message)}</error>'.encode()
        return Response(status, body, XML_TYPE)

    def malformed_body(self) -> tuple[bytes, str]:
        return (XML_HEAD + f'<session_list xmlns="{NS}"><session lsid="abc"><lseq>1</lse'.encode(), XML_TYPE)

    def handle(self, request: Request) -> Response:
        if request.path == "/oauth2/token":
            return self._token(request)
        if request.path != "/api/reporting":
            return self.error(404, f"Not found: {request.path}")
        auth = request.headers.get("Authorization") or ""
        token = auth[7:] if auth.startswith("Bearer ") else None
        with self._lock:
            expiry = self.tokens.get(token or "")
        if expiry is None or expiry <= time.time():
            return self.error(401, "Authentication failed: the access token is missing, invalid or expired")
        params = {k: v[0] for k, v in request.query.items()}
        if request.method == "POST" and request.body:
            params.update({k: v[0] for k, v in parse_qs(request.body.decode()).items()})
        report = params.get("generate_report")
        handler = getattr(self, f"_report_{report}", None) if report else None
        if handler is None:
            return self._xml_error(f"Invalid report type: {report!r}" if report else "generate_report is required")
        if report in self.reject_reports:
            root = "license_usage" if report == "LicenseUsage" else None  # some errors come inside the root
            return self._xml_error(f"The API account does not have permission to run {report} reports", root=root)
        try:
            return handler(params)
        except _BadParams as exc:
            return self._xml_error(str(exc))

    def _xml_error(self, message: str, root: str | None = None) -> Response:
        """Errors come with HTTP 200, inside the report's root element or alone."""
        inner = f"<error>{escape(message)}</error>"
        body = f'<{root} xmlns="{NS}">{inner}</{root}>' if root else f'<error xmlns="{NS}">{escape(message)}</error>'
        return Response(200, XML_HEAD + body.encode(), XML_TYPE)

    def _token(self, request: Request) -> Response:
        if request.method != "POST":
            return Response.json({"error": "invalid_request"}, 405)
        auth = request.headers.get("Authorization") or ""
        try:
            user, _, password = (base64.b64decode(auth[6:]).decode().partition(":") if auth.startswith("Basic ")
                                 else ("", "", ""))
        except ValueError:
            user, password = "", ""
        if (user, password) != (self.client_id, self.client_secret):
            return Response.json({"error": "invalid_client"}, 401)
        form = parse_qs(request.body.decode())
        if form.get("grant_type") != ["client_credentials"]:
            return Response.json({"error": "unsupported_grant_type"}, 400)
        with self._lock:
            self.tokens_issued += 1
            token = hashlib.sha256(f"{self.seed}:{self.tokens_issued}:{time.time()}".encode()).hexdigest()
            self.tokens[token] = time.time() + self.token_lifetime
            while len(self.tokens) > MAX_TOKENS:
                self.tokens.pop(next(iter(self.tokens)))
        return Response.json({"access_token": token, "token_type": "Bearer",
                              "expires_in": int(self.token_lifetime)})

    # report parameters
    def _range(self, params: dict, *, days_allowed: bool = True, ends: bool = True) -> tuple[str, int, int]:
        """('start'|'end', lo, hi) from the *_time/*_date and duration parameters."""
        now = int(time.time())
        for which in ("start", "end") if ends else ("start",):
            for unit in ("time", "date"):
                raw = params.get(f"{which}_{unit}")
                if raw is None:
                    continue
                if "duration" not in params:
                    raise _BadParams("duration is required")
                try:
                    duration = int(params["duration"])
                    if unit == "time":
                        lo = int(raw)
                    else:
                        lo = int(dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC).timestamp())
                except ValueError as exc:
                    raise _BadParams(f"Invalid value for {which}_{unit} or duration") from exc
                if duration < 0:
                    raise _BadParams("duration must not be negative")
                span = duration * (DAY if unit == "date" else 1)
                return which, lo, (lo + span if duration else now + 1)
        raise _BadParams("One of start_date, start_time" + (", end_date, end_time" if ends else "")
                         + " is required")

    def _stream(self, root: str, head: str, rows: t.Iterable[str]) -> Response:
        def body() -> t.Iterator[bytes]:
            yield XML_HEAD + f"<{root}{self.xmlns}>{head}".encode()
            batch: list[str] = []
            size = 0
            for row in rows:
                batch.append(row)
                size += len(row)
                if size >= 1 << 16:
                    yield "".join(batch).encode()
                    batch, size = [], 0
            batch.append(f"</{root}>")
            yield "".join(batch).encode()
        return Response(200, body(), XML_TYPE)

    def _session_indexes(self, params: dict) -> t.Iterable[int]:
        if "lsid" in params or "lsids" in params:
            wanted = (params.get("lsid") or params.get("lsids") or "").split(",")
            index = self.lsid_index()
            return sorted({index[lsid] for lsid in wanted if lsid in index})
        which, lo, hi = self._range(params)
        if which == "end":
            return self._sessions_ended_in(lo, hi)
        return self._sessions_started_in(lo, hi)

    def _limit_filter(self, params: dict) -> t.Callable[[int, int], bool] | None:
        """The ``limit`` parameter (SupportSession's documented forms; VaultAccountActivity's list
        was lost in the document's render: the same forms) as a test on (rep index, team index,
        site id); None when not sent. ``rep`` keeps what that representative owned."""
        limit = params.get("limit")
        if limit is None:
            return None
        kind, _, who = limit.partition(":")
        if limit == "all" or limit == "team:all":
            return lambda rep, team, site: True
        if kind in ("rep", "team", "members", "site") and who.isdigit():
            n = int(who)
            return {"rep": lambda rep, team, site: rep + 1 == n,
                    "team": lambda rep, team, site: team + 1 == n,
                    "members": lambda rep, team, site: rep % len(TEAMS) + 1 == n,
                    "site": lambda rep, team, site: site == n}[kind]
        raise _BadParams(f"Invalid value for limit: {limit!r}")

    def _report_SupportSession(self, params: dict) -> Response:
        keep = None if "lsid" in params or "lsids" in params else self._limit_filter(params)  # ignored with lsids

        def wanted(i: int) -> bool:
            rep, team = self.session_people(i)
            if not self.accepted(i):
                rep = -1  # no representative owned it
            return keep is None or keep(rep, team, i % 2 + 1)
        return self._stream("session_list", "", (self.session_xml(i) for i in self._session_indexes(params)
                                                 if wanted(i)))

    def _report_SupportSessionListing(self, params: dict) -> Response:
        def row(i: int) -> str:
            key = f' external_key="TICKET-{i}"' if i % 3 else ""
            odd = f"<undocumented_archived>{i % 2}</undocumented_archived>" if i % 5 == 0 else ""
            return (f'<session_summary lsid="{self.lsid(i)}" has_recording="{int(i % 2 == 0)}"{key}>'
                    f"<lseq>{i + 1}</lseq>{odd}</session_summary>")
        return self._stream("session_summary_list", "", (row(i) for i in self._session_indexes(params)))

    def _report_SupportSessionSummary(self, params: dict) -> Response:
        kind = params.get("report_type")
        if kind not in ("rep", "team", "site"):
            raise _BadParams("report_type must be one of rep, team, site")
        which, lo, hi = self._range(params)
        groups: dict[int, list[int]] = {}
        source = self._sessions_ended_in(lo, hi) if which == "end" else self._sessions_started_in(lo, hi)
        for i in source:
            start, end = self.session_times(i)
            rep, team = self.session_people(i)
            if kind == "rep" and not self.accepted(i):
                continue
            key = {"rep": rep + 1, "team": team + 1, "site": i % 2 + 1}[kind]
            groups.setdefault(key, []).append((end or start) - start)
        rows = []
        for key in sorted(groups):
            lengths = groups[key]
            avg = sum(lengths) // len(lengths)
            name = escape(TEAMS[key - 1]) if kind == "team" else f"{'Rep' if kind == 'rep' else 'Site'} {key}"
            rows.append(f'<summary id="{key}" type="{kind}"><display_name>{name}</display_name>'
                        f"<total_sessions>{len(lengths)}</total_sessions>"
                        f"<avg_sessions_per_weekday>{len(lengths) / 5:.1f}</avg_sessions_per_weekday>"
                        f"<avg_duration>{avg // 3600:02d}:{avg % 3600 // 60:02d}:{avg % 60:02d}</avg_duration>"
                        f"<undocumented_peak_concurrency>{min(len(lengths), 3)}</undocumented_peak_concurrency>"
                        "</summary>")
        return self._stream("summary_list", "", rows)

    def _survey_report(self, params: dict, kind: str) -> Response:
        if "lsid" not in params and "lsids" not in params:
            if params.get("report_type") not in ("rep", "team"):
                raise _BadParams("report_type must be rep or team")
            if not params.get("id"):
                raise _BadParams("id is required (a numeric ID or all)")
        indexes = self._session_indexes(params)
        by = params.get("report_type") if "lsid" not in params and "lsids" not in params else None
        who = params.get("id")
        site = params.get("site_id")
        if site is not None and not site.isdigit():
            raise _BadParams("site_id must be a numeric ID")

        def rows() -> t.Iterator[str]:
            for i in indexes:
                start, end = self.session_times(i)
                if end is None or not self.has_survey(i, kind):
                    continue
                rep, team = self.session_people(i)
                # report_type=rep: by the representative who last owned the session (none: left out)
                if by == "rep" and (not self.accepted(i) or who not in ("all", str(rep + 1))):
                    continue
                if by == "team" and who not in ("all", str(team + 1)):
                    continue
                if site is not None and int(site) != i % 2 + 1:
                    continue
                rng = random.Random(self.seed * 17 + i)
                submitted = f'<submitted_by type="cust">Customer {i}</submitted_by>' if kind == "cust" else \
                    f'<submitted_by type="rep">Rep {rep + 1}</submitted_by>'
                questions = "".join(
                    f'<question id="{q}"><name>q{q}</name><type>{"radio" if q == 1 else "checkbox"}</type>'
                    f"<label>Question {q}?</label><report_header>Q{q}</report_header><answer_list>"
                    + "".join(f"<answer>answer {q}.{a}</answer>" for a in range(q))
                    + "</answer_list></question>" for q in (1, 2))
                yield (f'<exit_survey lsid="{self.lsid(i)}" ts="{start}"><session_type>support</session_type>'
                       f'<public_site id="{i % 2 + 1}">Default</public_site>{submitted}'
                       f'<primary_customer id="0">Customer {i}</primary_customer>'
                       + (f'<primary_rep id="{rep + 1}">Rep {rep + 1}</primary_rep>' if self.accepted(i) else "")
                       + f'<primary_team id="{team + 1}">{escape(TEAMS[team])}</primary_team>'
                       f"<customer_list>{self._customer_xml(i, rng)}</customer_list>"
                       f"<rep_list>{self._rep_xml(rep, True, end - start) if self.accepted(i) else ''}</rep_list>"
                       f'<team_list><team id="{team + 1}" primary_team="1">{escape(TEAMS[team])}</team></team_list>'
                       f"<rep_resolved>0</rep_resolved><question_list>{questions}</question_list>"
                       + (f"<undocumented_survey_version>{i % 4}</undocumented_survey_version>"
                          if i // 2 % 2 == 0 else "")
                       + "</exit_survey>")
        return self._stream("exit_survey_list", "", rows())

    def _report_SupportCustExitSurvey(self, params: dict) -> Response:
        return self._survey_report(params, "cust")

    def _report_SupportRepExitSurvey(self, params: dict) -> Response:
        return self._survey_report(params, "rep")

    def _report_SupportTeam(self, params: dict) -> Response:
        _, lo, hi = self._range(params)
        only = params.get("team_id")
        by_team: dict[int, list[str]] = {}
        for j, ts in self._family_times("team", lo, hi):
            team, xml = self.team_event_xml(j, ts)
            if only is None or str(team + 1) == only:
                by_team.setdefault(team, []).append(xml)
        head = self._time_el("start_time", lo) + self._time_el("end_time", min(hi, int(time.time())))

        def rows() -> t.Iterator[str]:
            for team in sorted(by_team):
                logged = "".join(
                    f'<representative gsnumber="{r + 1}" id="{r + 1}"><display_name>Rep {r + 1}</display_name>'
                    f"<public_display_name>Alex {r + 1}</public_display_name><private_display_name>Rep {r + 1}"
                    f"</private_display_name><public_ip>203.0.113.{r + 1}</public_ip>"
                    f"<private_ip>192.0.2.{r + 1}</private_ip>"
                    "</representative>" for r in range(team, REPS, len(TEAMS) * 2))
                yield (f'<team_activity id="{team + 1}" name={quoteattr(TEAMS[team] + self.name_suffix)}'
                       f' undocumented_region="eu-{team % 2}">'
                       f"<logged_in_representatives>{logged}</logged_in_representatives><events>"
                       + "".join(by_team[team]) + "</events></team_activity>")
        return self._stream("team_activity_list", head, rows())

    def _report_JumpItem(self, params: dict) -> Response:
        _which, lo, hi = self._range(params)
        # the document's forms: jump_group='shared:[id]', jump_item=[id]:[type], performed_by='user:[id]'
        # (its examples quote two of them: quoted or not, both are read)
        group, item_filter, actor = (
            (params.get(name) or "").strip("'") or None for name in ("jump_group", "jump_item", "performed_by"))

        def wanted(j: int) -> bool:
            item, group_type, group_id, _ = self.jump_event_parts(j)
            if group is not None and group != f"{group_type}:{group_id}":
                return False
            if item_filter is not None and item_filter != f"{item}:{JUMP_TYPES[item % len(JUMP_TYPES)]}":
                return False
            return actor is None or actor == f"user:{item % REPS + 1}"
        return self._stream("jump_item_event_list", "",
                            (self.jump_event_xml(j, ts) for j, ts in self._family_times("jump", lo, hi) if wanted(j)))

    def _report_VaultAccountActivity(self, params: dict) -> Response:
        _, lo, hi = self._range(params)
        keep = self._limit_filter(params)

        def wanted(j: int) -> bool:  # a representative's own events (the system's have none)
            rep = -1 if j % 3 == 0 else j % REPS
            return keep is None or keep(rep, rep % len(TEAMS) if rep >= 0 else -1, 1)
        return self._stream("vault_account_activity_list", "",
                            (self.vault_event_xml(j, ts) for j, ts in self._family_times("vault", lo, hi)
                             if wanted(j)))

    def _report_LicenseUsage(self, params: dict) -> Response:
        group_by = params.get("group_by")
        if group_by not in ("hour", "day", "month"):
            return self._xml_error("group_by must be one of hour, day, month", root="license_usage")
        _, lo, hi = self._range(params, ends=False)
        groups: dict[int, tuple[int, int]] = {}  # period start -> (licences, moment) of its peak
        for moment, licences in self.peaks(lo, hi):
            g = self.group_start(moment, group_by)
            if g not in groups or licences > groups[g][0]:
                groups[g] = (licences, moment)
        head = (self._time_el("start_time", lo) + self._time_el("end_time", min(hi, int(time.time())))
                + f"<group_by>{group_by}</group_by><license_time_intervals>")
        rows = [f'<license_time_interval timestamp="{m}" datetime="{self._iso(m)}">'
                f'<license_count license_type="representative">{n}</license_count>'
                f'<license_count license_type="representative" reason="login">{n - 1}</license_count>'
                f'<license_count license_type="representative" reason="extended_contact">1</license_count>'
                f"<undocumented_capacity>{n + 5}</undocumented_capacity>"
                "</license_time_interval>" for _, (n, m) in sorted(groups.items())]
        rows.append("</license_time_intervals>")
        return self._stream("license_usage", head, rows)

    def _report_ArchiveListing(self, params: dict) -> Response:
        try:
            day = dt.date.fromisoformat(params.get("date") or "")
        except ValueError:
            return self._xml_error("date is required (YYYY-MM-DD)")
        lo = int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp())
        hi = lo + DAY
        rows = []
        slots = [s for s in self.archive_slots if lo <= s < hi]
        for s in self.state_slots:
            if lo <= s < hi:
                index = (s - lo) // 1800 + 1
                rows.append(f"<state_archive>{self._time_el('time', s)}<index>{index}</index>"
                            f"<event_archive_index>{(s - lo) // 600 + 1}</event_archive_index>"
                            f"<undocumented_size>{index * 1000}</undocumented_size></state_archive>")
        for s in slots:
            rows.append(f"<event_archive>{self._time_el('time', s)}{self._time_el('end_time', s + 599)}"
                        f"<index>{(s - lo) // 600 + 1}</index>"
                        f"<undocumented_size>{(s - lo) // 600 * 100}</undocumented_size></event_archive>")
        return self._stream("archives", "", rows)

    def _report_Archive(self, params: dict) -> Response:
        kind = params.get("type")
        if kind not in ("state", "event"):
            return self._xml_error("type must be state or event")
        try:
            index = int(params.get("index") or "")
            slot = self.archive_slot(params.get("date") or "", index, kind)
        except ValueError:
            return self._xml_error("date (YYYY-MM-DD) and index (integer) are required")
        if slot is None:
            return self._xml_error(f"No {kind} archive {index} for {params.get('date')}")

        def lines() -> t.Iterator[bytes]:
            if kind == "state":
                with self._lock:
                    self.state_downloads.append((params.get("date") or "", index))
                yield from self.state_archive_chunks(slot)
                return
            batch = []
            for line in self.archive_all_lines(slot):
                batch.append(line if isinstance(line, RawLine) else json.dumps(line, separators=(",", ":")))
                if len(batch) >= 2000:
                    yield ("\n".join(batch) + "\n").encode()
                    batch = []
            if batch:
                yield ("\n".join(batch) + "\n").encode()

        def gz() -> t.Iterator[bytes]:
            comp = zlib.compressobj(1, zlib.DEFLATED, 31)
            for chunk in lines():
                out = comp.compress(chunk)
                if out:
                    yield out
            yield comp.flush()
        return Response(200, gz(), "application/x-gzip",
                        {"Content-Disposition": f'attachment; filename="{kind}-{params.get("date")}-{index}.gz"'})


class _BadParams(ValueError):
    pass


class _Family:
    """Events spread evenly over [lo, hi), plus late/new ones added by advance()."""

    def __init__(self, count: int, lo: int, hi: int) -> None:
        self.count = max(count, 0)
        self.lo = lo
        self.step = (hi - lo) / max(self.count, 1)
        self.extra: list[int] = []

    def time(self, j: int) -> int:
        if j < self.count:
            return int(self.lo + (j + 0.5) * self.step)
        return self.extra[j - self.count]

    def indexes_between(self, lo: int, hi: int) -> t.Iterator[int]:
        first = bisect.bisect_left(range(self.count), lo, key=self.time)
        for j in range(first, self.count):
            if self.time(j) >= hi:
                break
            yield j
        for k, ts in enumerate(self.extra):
            if lo <= ts < hi:
                yield self.count + k
