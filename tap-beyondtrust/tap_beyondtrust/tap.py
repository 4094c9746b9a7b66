"""tap-beyondtrust: the BeyondTrust Remote Support reporting API as Singer streams."""

from __future__ import annotations

import sys
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_beyondtrust import period
from tap_beyondtrust._sdk import CheckedConfig
from tap_beyondtrust.auth import BeyondTrustOAuth, token_url
from tap_beyondtrust.client import parse_when
from tap_beyondtrust.streamrules import request_timeout, tls_verify
from tap_beyondtrust.streams import STREAM_TYPES

GROUP_BY = ("hour", "day", "month")
#: start_date / end_date: an ISO date, optionally followed by a time (the calendar is checked by check_config)
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.]+(Z|[+-][0-9]{2}:?[0-9]{2})?)?$"
ACTIVATE_TEXT = ("Emit ACTIVATE_VERSION messages for full-table streams, so that a loader that reads them "
                 "(e.g. target-postgres with activate_version) marks or removes rows gone at the vendor.")
STATE_ARCHIVES = ("latest", "daily", "all")
#: the document's Jump Item types (jump_item=[id]:[type])
JUMP_ITEM_TYPES = ("jump_client", "local_jump", "remote_jump", "local_vnc", "remote_vnc", "remote_rdp",
                   "local_rdp", "shell_jump", "protocol_tunnel", "webjump", "vpro")
#: string filters: setting -> JSON schema pattern (the forms the document gives)
FILTER_PATTERNS = {
    "jump_group": r"^(shared|personal):[0-9]+$|^'(shared|personal):[0-9]+'$",
    "jump_item": rf"^[0-9]+:({'|'.join(JUMP_ITEM_TYPES)})$",
    "jump_performed_by": r"^(user:[0-9]+|api_account:[0-9]+|system)$|^'(user:[0-9]+|api_account:[0-9]+|system)'$",
    "support_session_limit": r"^(all|rep:[0-9]+|team:(all|[0-9]+)|members:[0-9]+|site:[0-9]+)$",
    "vault_limit": r"^(all|rep:[0-9]+|team:(all|[0-9]+)|members:[0-9]+|site:[0-9]+)$",
}


class RecordBufferingWriter(MsgSpecWriter):
    """msgspec's writer, but RECORD lines are left in stdout's buffer instead of
    being flushed one by one (measured: the per-record flush was ~15% of the
    tap's CPU on the archive benchmark). Every other message (SCHEMA, STATE...)
    flushes, so a STATE line never reaches the target before its records, and a
    killed tap loses only records written after its last STATE, which a resumed
    sync reads again."""

    @override
    def write_message(self, message: t.Any) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()


class TapBeyondTrust(CheckedConfig, Tap):
    """BeyondTrust Remote Support: session, survey, team, Jump Item, Vault,
    licence and archive reports, streamed from XML and gzip archives."""

    name = "tap-beyondtrust"
    SECRET_SETTINGS = ("client_secret",)
    message_writer_class = RecordBufferingWriter

    config_jsonschema = th.PropertiesList(
        th.Property("api_url", th.URIType(pattern=r"^https?://\S"), required=True,
                    description="Root of the appliance, e.g. https://support.example.com."),
        th.Property("client_id", th.StringType(pattern=r"\S"), required=True,
                    description="OAuth client id of the API account (read-only reporting access)."),
        th.Property("client_secret", th.StringType(pattern=r"\S"), required=True, secret=True,
                    description="OAuth client secret of the API account."),
        th.Property("start_date", th.DateTimeType(pattern=ISO_DATE),
                    description="Where the first sync starts, inclusive: an ISO date (its midnight) or date-time, "
                                "UTC unless it carries an offset. Default: 30 days before today, at midnight UTC."),
        th.Property("end_date", th.DateTimeType(pattern=ISO_DATE),
                    description="Optional end of the synced period, exclusive, for backfills: a date-time ends it "
                                "at that instant, an ISO date at the midnight after that day (so that day is "
                                "synced). UTC unless it carries an offset. Streams read by whole days read every "
                                "day that starts before it. Default: none (up to now)."),
        th.Property("window_days", th.IntegerType(minimum=1), default=1,
                    description="Days per request; the bookmark advances after each window."),
        th.Property("lookback_seconds", th.IntegerType(minimum=0), default=60,
                    description="Seconds before the bookmark that every incremental sync reads again, because "
                                "the vendor still changes recent data (rows read again are upserted by key)."),
        th.Property("unended_session_days", th.IntegerType(minimum=0), default=3,
                    description="Sessions without an end time (still running, or closed abnormally) never "
                                "reach the end_time windows: each sync also reads the sessions started this "
                                "many days back (and since the previous sync) and emits those not ended."),
        th.Property("license_group_by", th.StringType, default="day", allowed_values=list(GROUP_BY),
                    description="LicenseUsage grouping: hour, day or month."),
        th.Property("survey_site_id", th.IntegerType(minimum=1),
                    description="Exit surveys: only those of sessions of this public site (site_id; the "
                                "default site is 1). Unset: every site."),
        th.Property("survey_rep_id", th.IntegerType(minimum=1),
                    description="Exit surveys: only those of sessions this representative last owned "
                                "(report_type=rep&id=<id>). Unset: every representative and team."),
        th.Property("survey_team_id", th.IntegerType(minimum=1),
                    description="Exit surveys: only those of sessions of this team (report_type=team&id=<id>); "
                                "not with survey_rep_id."),
        th.Property("team_id", th.IntegerType(minimum=1),
                    description="SupportTeam (support_teams, team_activity): only this team's activity."),
        th.Property("jump_group", th.StringType(pattern=FILTER_PATTERNS["jump_group"]),
                    description="JumpItem: only events of Jump Items in this group, shared:<id> or "
                                "personal:<id>; sent as given."),
        th.Property("jump_item", th.StringType(pattern=FILTER_PATTERNS["jump_item"]),
                    description="JumpItem: only events of this Jump Item, <id>:<type> (e.g. 1:jump_client)."),
        th.Property("jump_performed_by", th.StringType(pattern=FILTER_PATTERNS["jump_performed_by"]),
                    description="JumpItem: only events performed by user:<id>, api_account:<id> or system "
                                "(the performed_by parameter); sent as given."),
        th.Property("support_session_limit", th.StringType(pattern=FILTER_PATTERNS["support_session_limit"]),
                    description="SupportSession (support_sessions, support_session_events): the limit "
                                "parameter, one of all, rep:<id>, team:all, team:<id>, members:<team id>, "
                                "site:<id>."),
        th.Property("vault_limit", th.StringType(pattern=FILTER_PATTERNS["vault_limit"]),
                    description="VaultAccountActivity: the limit parameter (same forms as "
                                "support_session_limit)."),
        th.Property("state_archives", th.StringType, default="latest", allowed_values=list(STATE_ARCHIVES),
                    description="Which state archives the state_* streams read: latest (the newest at each "
                                "sync, a full snapshot), daily (the last of each day) or all."),
        th.Property("emit_activate_version_messages", th.BooleanType, default=False, description=ACTIVATE_TEXT),
        th.Property("paths", th.ObjectType(additional_properties=th.StringType),
                    description="Stream name to URL path (default /api/reporting); key 'token' for the "
                                "OAuth token path (default /oauth2/token)."),
        th.Property("request_timeout", th.NumberType(exclusive_minimum=0), default=300,
                    description="Seconds before a request times out (it is then retried)."),
        th.Property("max_retries", th.IntegerType(minimum=1), default=5,
                    description="Attempts per request on 429, 5xx, timeouts and dropped connections."),
        th.Property("retry_backoff_seconds", th.NumberType(minimum=0), default=2,
                    description="First wait between retries, doubled each time; Retry-After wins when sent."),
        th.Property("verify_ssl", th.BooleanType, default=True, description="Verify the appliance's TLS certificate."),
        th.Property("ca_bundle", th.StringType, description="Path of a CA bundle for the appliance's private CA."),
    ).to_dict()

    @override
    def check_config(self, config: t.Mapping[str, t.Any]) -> list[str]:
        """The rules across settings (the schema holds the others)."""
        return check_config(config)

    @cached_property
    def oauth(self) -> BeyondTrustOAuth:
        """The one authenticator every stream shares (an API account has at most 30 valid tokens)."""
        config = self.config
        return BeyondTrustOAuth(token_url=token_url(config), client_id=config["client_id"],
                                client_secret=config["client_secret"],
                                verify=tls_verify(config), timeout=request_timeout(config), logger=self.logger)

    @override
    def discover_streams(self) -> list:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


def check_config(config: t.Mapping[str, t.Any]) -> list[str]:
    """The rules across settings, as readable errors (each setting's own rules are in the JSON schema)."""
    errors = []
    bounds = {}
    for name in ("start_date", "end_date"):  # the schema's pattern checks the form, not the calendar
        if config.get(name):
            try:
                bounds[name] = parse_when(config[name])
            except ValueError:
                errors.append(f"{name} {config[name]!r} is not an ISO date (YYYY-MM-DD) or date-time")
    end = period.end_instant(config) if "end_date" in bounds else None
    if end is not None and "start_date" in bounds and end <= bounds["start_date"]:
        errors.append(f"end_date {config['end_date']!r} (exclusive) is not after start_date "
                      f"{config['start_date']!r}: the synced period would be empty")
    if config.get("survey_rep_id") is not None and config.get("survey_team_id") is not None:
        errors.append("survey_rep_id and survey_team_id cannot both be set (the report filters by one of them)")
    return errors


if __name__ == "__main__":
    TapBeyondTrust.cli()
