"""Report elements to records, as the reporting API document names them.

Each builder reads one row element in a single pass over its children: the
documented ones become typed fields, anything else lands in ``extra`` (as a
generic conversion of the element), so undocumented data still reaches the
target.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import typing as t

from tap_beyondtrust.client import NS, attr_time, element_time, utc_iso

PREFIX_LEN = len(NS) + 2
FILES_TAG = f"{{{NS}}}files"


def local(el: t.Any) -> str | None:
    name = el.tag
    if not isinstance(name, str):  # comments, processing instructions
        return None
    return name[PREFIX_LEN:] if name[0] == "{" else name


def text(el: t.Any) -> str | None:
    value = el.text
    return value if value else None


def as_int(value: t.Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None


def as_float(value: t.Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def hms_seconds(value: str | None) -> int | None:
    """``HH:MM:SS`` as seconds (None when it does not parse)."""
    if not value:
        return None
    parts = value.strip().split(":")
    if len(parts) != 3:
        return None
    try:
        h, m, s = (int(p) for p in parts)
    except ValueError:
        return None
    return h * 3600 + m * 60 + s


def generic(el: t.Any) -> t.Any:
    """Any element as JSON: attributes and children as keys (repeated ones as
    lists), text as the value itself or, beside attributes/children, ``value``."""
    out: dict[str, t.Any] = dict(el.attrib)
    lists: set[str] = set()
    for child in el:
        name = local(child)
        if name is None:
            continue
        value = generic(child)
        if name in lists:
            out[name].append(value)
        elif name in out:
            out[name] = [out[name], value]
            lists.add(name)
        else:
            out[name] = value
    body = (el.text or "").strip()
    if not out:
        return body if body else None
    if body:
        out["value"] = body
    return out


def entity(el: t.Any, *int_attrs: str) -> dict:
    """``<x attr="..">Name</x>``: the attributes (ids as integers) and the name."""
    out: dict[str, t.Any] = {"name": text(el)}
    for key, value in el.attrib.items():
        out[key] = as_int(value) if key in int_attrs else value
    return out


def children_text(el: t.Any) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for c in el:
        name = local(c)
        if name:
            out[name] = text(c)
    return out


def decode_body(encoded: str | None) -> str | None:
    """An ``encoded_body`` as text. Bytes that are not UTF-8, and NUL (which no
    PostgreSQL text or JSON column accepts), become U+FFFD; ``encoded_body``
    keeps the exact bytes."""
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded).decode("utf-8", "replace").replace("\x00", "\ufffd")
    except (binascii.Error, ValueError):
        return None


# ------------------------------------------------------------------ shared parts
CUSTOMER_TEXT = frozenset(("username", "public_ip", "private_ip", "hostname", "os"))
CUSTOMER_INT = frozenset(("primary_cust",))
REP_TEXT = frozenset(("username", "display_name", "public_display_name", "private_display_name",
                      "public_ip", "private_ip", "hostname", "os"))
REP_INT = frozenset(("display_number", "session_owner", "primary_rep", "seconds_involved", "invited"))


def _participant(el: t.Any, out: dict[str, t.Any], texts: frozenset[str], ints: frozenset[str], *,
                 info: bool = False) -> dict:
    """A customer or representative element: its documented children as text or
    integers (``info`` as its children's text), any other child in ``extra``."""
    extra = {}
    for c in el:
        name = local(c)
        if name is None:
            continue
        if name in texts:
            out[name] = text(c)
        elif name in ints:
            out[name] = as_int(text(c))
        elif info and name == "info":
            out["info"] = children_text(c)
        else:
            extra[name] = generic(c)
    if extra:
        out["extra"] = extra
    return out


def customer(el: t.Any) -> dict:
    return _participant(el, {"gsnumber": as_int(el.get("gsnumber"))}, CUSTOMER_TEXT, CUSTOMER_INT, info=True)


def representative(el: t.Any) -> dict:
    return _participant(el, {"gsnumber": as_int(el.get("gsnumber")), "id": as_int(el.get("id"))},
                        REP_TEXT, REP_INT)


def team(el: t.Any) -> dict:
    return {"id": as_int(el.get("id")), "name": text(el), "primary_team": as_int(el.get("primary_team"))}


def recording(el: t.Any) -> dict:
    out: dict[str, t.Any] = {"instance": as_int(el.get("instance"))}
    for c in el:
        name = local(c)
        if name:
            out[name] = text(c)
    return out


def files_of(el: t.Any) -> list[dict]:
    return [{"name": f.get("name"), "size": as_int(f.get("size"))} for f in el if local(f) == "file"]


def data_values(el: t.Any) -> dict:
    """``<data><value name=".." value=".."/>...</data>`` as {name: value}; plain text as ``text``."""
    out: dict[str, t.Any] = {}
    for v in el:
        if local(v) == "value" and v.get("name") is not None:
            out[v.get("name")] = v.get("value")
    if not out and (el.text or "").strip():
        out["text"] = el.text.strip()
    return out


def system_information(el: t.Any) -> list[dict]:
    categories = []
    for cat in el:
        if local(cat) != "category":
            continue
        entry: dict[str, t.Any] = {"name": cat.get("name"), "fields": [], "rows": []}
        for part in cat:
            name = local(part)
            if name == "description":
                entry["fields"] = [text(f) for f in part]
            elif name == "data":
                entry["rows"] = [[text(f) for f in row] for row in part]
        categories.append(entry)
    return categories


# ------------------------------------------------------------------ SupportSession
SESSION_TEXT = {"session_type", "external_key", "session_chat_view_url", "session_chat_download_url",
                "session_recording_view_url", "session_recording_download_url"}
SESSION_INT = {"lseq", "file_transfer_count", "file_move_count", "file_delete_count"}


def session_record(el: t.Any) -> dict:
    rec: dict[str, t.Any] = {"lsid": el.get("lsid")}
    extra: dict[str, t.Any] = {}
    files: list[dict] = []
    for c in el:
        name = local(c)
        if name is None:
            continue
        if name in SESSION_TEXT:
            rec[name] = text(c)
        elif name in SESSION_INT:
            rec[name] = as_int(text(c))
        elif name in ("start_time", "end_time"):
            rec[name] = element_time(c)
        elif name == "duration":
            rec["duration"] = text(c)
            rec["duration_seconds"] = hms_seconds(text(c))
        elif name in ("public_site", "jumpoint", "primary_team"):
            rec[name] = entity(c, "id")
        elif name in ("primary_customer", "primary_rep"):
            rec[name] = entity(c, "gsnumber", "id")
        elif name == "custom_attributes":
            rec["custom_attributes"] = [
                {"display_name": a.get("display_name"), "code_name": a.get("code_name"), "value": text(a)}
                for a in c if local(a) == "custom_attribute"]
        elif name in ("show_my_screen_recordings", "command_shell_recordings"):
            rec[name] = [recording(r) for r in c if local(r)]
        elif name == "customer_list":
            rec["customers"] = [customer(x) for x in c if local(x) == "customer"]
        elif name == "rep_list":
            rec["representatives"] = [representative(x) for x in c if local(x) == "representative"]
        elif name == "team_list":
            rec["teams"] = [team(x) for x in c if local(x) == "team"]
        elif name == "cust_survey_list":
            rec["customer_exit_surveys"] = [generic(x) for x in c if local(x)]
        elif name == "rep_survey_list":
            rec["rep_exit_surveys"] = [generic(x) for x in c if local(x)]
        elif name == "session_details":
            for files_el in c.iter(FILES_TAG):  # files transferred, for the session's own record
                ev = files_el.getparent()
                for f in files_of(files_el):
                    files.append({**f, "event_type": ev.get("event_type"),
                                  "timestamp": attr_time(ev.get("timestamp"))})
        else:
            extra[name] = generic(c)
    rec["files"] = files
    rec["extra"] = extra or None
    return rec


BODY_TAGS = frozenset(("body", "encoded_body"))


def chat_body(rec: dict[str, t.Any], name: str, el: t.Any) -> None:
    """A chat event's ``<body>``, or its base64 ``<encoded_body>`` (kept as sent, and decoded)."""
    if name == "body":
        rec["body"] = el.text
        rec["body_was_encoded"] = False
    else:
        rec["body"] = decode_body(el.text)
        rec["body_was_encoded"] = True
        rec["encoded_body"] = text(el)




def session_event_record(el: t.Any, lsid: str | None, seq: int, session_end: str | None) -> dict:
    rec: dict[str, t.Any] = {
        "lsid": lsid, "seq": seq, "session_end_time": session_end,
        "timestamp": attr_time(el.get("timestamp")), "event_type": el.get("event_type"),
    }
    extra: dict[str, t.Any] = {}
    for key, value in el.attrib.items():
        if key not in ("timestamp", "event_type"):
            extra[key] = value
    for c in el:
        name = local(c)
        if name is None:
            continue
        if name in ("performed_by", "destination"):
            rec[name] = entity(c, "gsnumber")
        elif name in BODY_TAGS:
            chat_body(rec, name, c)
        elif name == "filename":
            rec["filename"] = text(c)
        elif name == "filesize":
            rec["filesize"] = as_int(text(c))
        elif name == "files":
            rec["files"] = files_of(c)
        elif name == "data":
            rec["data"] = data_values(c)
        elif name == "system_information":
            rec["system_information"] = system_information(c)
        else:
            extra[name] = generic(c)
    rec["extra"] = extra or None
    return rec


def listing_record(el: t.Any) -> dict:
    rec: dict[str, t.Any] = {"lsid": el.get("lsid"), "has_recording": as_int(el.get("has_recording")),
                             "external_key": el.get("external_key")}
    extra = {k: v for k, v in el.attrib.items() if k not in ("lsid", "has_recording", "external_key")}
    for c in el:
        name = local(c)
        if name == "lseq":
            rec["lseq"] = as_int(text(c))
        elif name:
            extra[name] = generic(c)
    rec["extra"] = extra or None
    return rec


def summary_record(el: t.Any) -> dict:
    rec: dict[str, t.Any] = {"id": as_int(el.get("id")), "type": el.get("type")}
    extra = {}
    for c in el:
        name = local(c)
        if name == "display_name":
            rec[name] = text(c)
        elif name == "total_sessions":
            rec[name] = as_int(text(c))
        elif name == "avg_sessions_per_weekday":
            rec[name] = as_float(text(c))
        elif name == "avg_duration":
            rec[name] = text(c)
            rec["avg_duration_seconds"] = hms_seconds(text(c))
        elif name:
            extra[name] = generic(c)
    rec["extra"] = extra or None
    return rec


def survey_record(el: t.Any) -> dict:
    rec: dict[str, t.Any] = {"lsid": el.get("lsid"), "session_start_time": attr_time(el.get("ts"))}
    extra: dict[str, t.Any] = {}
    for c in el:
        name = local(c)
        if name is None:
            continue
        if name == "session_type":
            rec[name] = text(c)
        elif name == "public_site":
            rec[name] = entity(c, "id")
        elif name == "submitted_by":
            rec[name] = entity(c)
        elif name in ("primary_customer", "primary_rep", "primary_team"):
            rec[name] = entity(c, "id")
        elif name == "customer_list":
            rec["customers"] = [customer(x) for x in c if local(x) == "customer"]
        elif name == "rep_list":
            rec["representatives"] = [representative(x) for x in c if local(x) == "representative"]
        elif name == "team_list":
            rec["teams"] = [team(x) for x in c if local(x) == "team"]
        elif name == "rep_resolved":
            rec[name] = as_int(text(c))
        elif name == "question_list":
            questions = []
            for q in c:
                if local(q) != "question":
                    continue
                question: dict[str, t.Any] = {"id": as_int(q.get("id")), "answers": []}
                for part in q:
                    pname = local(part)
                    if pname == "answer_list":
                        question["answers"] = [a.text or "" for a in part if local(a) == "answer"]
                    elif pname:
                        question[pname] = text(part)
                questions.append(question)
            rec["questions"] = questions
        else:
            extra[name] = generic(c)
    rec["extra"] = extra or None
    return rec


def team_representatives(el: t.Any) -> list[dict]:
    return [representative(r) for r in el if local(r) == "representative"]


def team_event_record(el: t.Any, team_id: int | None, team_name: str | None) -> dict:
    rec: dict[str, t.Any] = {"team_id": team_id, "team_name": team_name,
                             "timestamp": attr_time(el.get("timestamp")), "event_type": el.get("event_type")}
    extra: dict[str, t.Any] = {k: v for k, v in el.attrib.items() if k not in ("timestamp", "event_type")}
    for c in el:
        name = local(c)
        if name is None:
            continue
        if name == "performed_by":
            rec[name] = entity(c, "gsnumber")
        elif name == "destinations":
            rec[name] = [entity(d, "gsnumber") for d in c if local(d) == "destination"]
        elif name == "files":
            rec[name] = files_of(c)
        elif name == "data":
            rec[name] = data_values(c)
        elif name in BODY_TAGS:
            chat_body(rec, name, c)
        else:
            extra[name] = generic(c)
    rec["extra"] = extra or None
    return rec


def jump_item_record(el: t.Any) -> dict:
    rec: dict[str, t.Any] = {}
    extra: dict[str, t.Any] = dict(el.attrib)
    for c in el:
        name = local(c)
        if name is None:
            continue
        if name == "timestamp":
            rec["timestamp"] = element_time(c)
        elif name == "jump_item":
            rec["jump_item_id"] = as_int(text(c))
        elif name in ("jump_item_name", "event_type", "jump_item_type"):
            rec[name] = text(c)
        elif name == "jump_group" or name == "performed_by":
            rec[name] = entity(c, "id")
        elif name == "data":
            rec["data"] = (c.text or "").strip() or (json.dumps(generic(c)) if len(c) else None)
        else:
            extra[name] = generic(c)
    rec["extra"] = extra or None
    return rec


ACCOUNT_NAMES = ("account", "account_id")


def _account(rec: dict, raw: str | None) -> None:
    """The document's ``Account`` (the Vault account's id): as sent, and as an integer when it is one."""
    value = raw.strip() if raw else None
    rec["account"] = value or None
    rec["account_id"] = as_int(value)


def vault_record(el: t.Any) -> dict:
    rec: dict[str, t.Any] = {"timestamp": attr_time(el.get("timestamp")), "event_type": el.get("event_type")}
    extra: dict[str, t.Any] = {}
    for key, value in el.attrib.items():
        if key.lower() in ACCOUNT_NAMES:
            _account(rec, value)
        elif key not in ("timestamp", "event_type"):
            extra[key] = value
    for c in el:
        name = local(c)
        if name is None:
            continue
        if name.lower() in ACCOUNT_NAMES:
            _account(rec, c.get("id") or text(c))
            if c.get("id") and text(c):
                rec["account_name"] = text(c)
        elif name == "performed_by":
            rec[name] = entity(c, "id")
        elif name == "data":
            rec["data"] = (c.text or "").strip() or None
        else:
            extra[name] = generic(c)
    rec["extra"] = extra or None
    return rec


def license_interval_record(el: t.Any, group_by: str) -> dict:
    """One peak of licence usage. The period it is the peak of (its hour, day
    or month) is not given: it is the ``datetime`` attribute floored to
    ``group_by`` in the appliance's own UTC offset, as UTC."""
    counts = []
    extra: dict[str, t.Any] = {k: v for k, v in el.attrib.items() if k not in ("timestamp", "datetime")}
    for c in el:
        name = local(c)
        if name == "license_count":
            counts.append({"license_type": c.get("license_type"), "reason": c.get("reason"),
                           "count": as_int(text(c))})
        elif name:
            extra[name] = generic(c)
    local_time = el.get("datetime")
    peak = attr_time(el.get("timestamp")) or utc_iso(local_time)
    return {"group_by": group_by, "period_start": period_start(local_time, group_by) or period_start(peak, group_by),
            "timestamp": peak, "datetime": local_time, "license_counts": counts, "extra": extra or None}


def period_start(value: str | None, group_by: str) -> str | None:
    """The start of the hour, day or month of an ISO time, in its own UTC offset, as UTC ISO 8601."""
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    moment = moment.replace(minute=0, second=0, microsecond=0)
    if group_by != "hour":
        moment = moment.replace(hour=0)
    if group_by == "month":
        moment = moment.replace(day=1)
    return moment.astimezone(dt.timezone.utc).isoformat()


def archive_listing_record(el: t.Any, date: str) -> dict:
    rec: dict[str, t.Any] = {"date": date, "archive_type": "state" if local(el) == "state_archive" else "event"}
    extra = {}
    for c in el:
        name = local(c)
        if name in ("time", "end_time"):
            rec[name] = element_time(c)
        elif name in ("index", "event_archive_index"):
            rec[name] = as_int(text(c))
        elif name:
            extra[name] = generic(c)
    rec["extra"] = extra or None
    return rec


def content_key(record: dict) -> str:
    """A stable key for rows the API gives no id: a digest of their content."""
    return hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()
