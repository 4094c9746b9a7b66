"""tap-beyondtrust: the BeyondTrust Remote Support reporting API as Singer streams."""

from __future__ import annotations

import datetime as dt
import re
import sys
import typing as t
from functools import cached_property

from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.singerlib import RecordMessage

from tap_beyondtrust._sdk import CheckedConfig
from tap_beyondtrust.client import DEFAULT_TOKEN_PATH, OAuthClientCredentials
from tap_beyondtrust.streams import STREAM_TYPES

GROUP_BY = ("hour", "day", "month")
STATE_ARCHIVES = ("latest", "daily", "all")
#: the document's Jump Item types (jump_item=[id]:[type])
JUMP_ITEM_TYPES = ("jump_client", "local_jump", "remote_jump", "local_vnc", "remote_vnc", "remote_rdp",
                   "local_rdp", "shell_jump", "protocol_tunnel", "webjump", "vpro")
#: string filters: setting -> (JSON schema pattern, the forms it takes, for the error)
FILTER_PATTERNS = {
    "jump_group": (r"^(shared|personal):[0-9]+$|^'(shared|personal):[0-9]+'$",
                   "shared:<id> or personal:<id> (optionally quoted, as in the document's examples)"),
    "jump_item": (rf"^[0-9]+:({'|'.join(JUMP_ITEM_TYPES)})$", f"<id>:<type>, type one of {', '.join(JUMP_ITEM_TYPES)}"),
    "jump_performed_by": (r"^(user:[0-9]+|api_account:[0-9]+|system)$|^'(user:[0-9]+|api_account:[0-9]+|system)'$",
                          "user:<id>, api_account:<id> or system (optionally quoted)"),
    "support_session_limit": (r"^(all|rep:[0-9]+|team:(all|[0-9]+)|members:[0-9]+|site:[0-9]+)$",
                              "all, rep:<id>, team:all, team:<id>, members:<team id> or site:<id>"),
    "vault_limit": (r"^(all|rep:[0-9]+|team:(all|[0-9]+)|members:[0-9]+|site:[0-9]+)$",
                    "all, rep:<id>, team:all, team:<id>, members:<team id> or site:<id>"),
}
#: integer filters (ids: 1 or more)
ID_FILTERS = ("survey_site_id", "survey_rep_id", "survey_team_id", "team_id")


class RecordBufferingWriter(MsgSpecWriter):
    """msgspec's writer, but RECORD lines are left in stdout's buffer instead of
    being flushed one by one (measured: the per-record flush was ~15% of the
    tap's CPU on the archive benchmark). Every other message (SCHEMA, STATE...)
    flushes, so a STATE line never reaches the target before its records, and a
    killed tap loses only records written after its last STATE, which a resumed
    sync reads again."""

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
        th.Property("api_url", th.StringType, required=True,
                    description="Root of the appliance, e.g. https://support.example.com."),
        th.Property("client_id", th.StringType, required=True,
                    description="OAuth client id of the API account (read-only reporting access)."),
        th.Property("client_secret", th.StringType, required=True, secret=True,
                    description="OAuth client secret of the API account."),
        th.Property("start_date", th.DateTimeType,
                    description="Where the first sync starts (ISO date or date-time); default 30 days ago, 00:00 UTC."),
        th.Property("end_date", th.DateTimeType, description="Optional upper bound, for backfills."),
        th.Property("window_days", th.IntegerType, default=1,
                    description="Days per report request (sessions, surveys, teams, Jump Items, Vault); "
                                "the bookmark advances per window."),
        th.Property("lookback_seconds", th.IntegerType, default=60,
                    description="Seconds before a window bookmark re-read on the next sync, in case the "
                                "appliance's clock runs behind the tap's (rows re-read are upserted by key)."),
        th.Property("unended_session_days", th.IntegerType, default=3,
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
        th.Property("jump_group", th.StringType(pattern=FILTER_PATTERNS["jump_group"][0]),
                    description="JumpItem: only events of Jump Items in this group, shared:<id> or "
                                "personal:<id>; sent as given."),
        th.Property("jump_item", th.StringType(pattern=FILTER_PATTERNS["jump_item"][0]),
                    description="JumpItem: only events of this Jump Item, <id>:<type> (e.g. 1:jump_client)."),
        th.Property("jump_performed_by", th.StringType(pattern=FILTER_PATTERNS["jump_performed_by"][0]),
                    description="JumpItem: only events performed by user:<id>, api_account:<id> or system "
                                "(the performed_by parameter); sent as given."),
        th.Property("support_session_limit", th.StringType(pattern=FILTER_PATTERNS["support_session_limit"][0]),
                    description="SupportSession (support_sessions, support_session_events): the limit "
                                "parameter, one of all, rep:<id>, team:all, team:<id>, members:<team id>, "
                                "site:<id>."),
        th.Property("vault_limit", th.StringType(pattern=FILTER_PATTERNS["vault_limit"][0]),
                    description="VaultAccountActivity: the limit parameter (same forms as "
                                "support_session_limit)."),
        th.Property("state_archives", th.StringType, default="latest", allowed_values=list(STATE_ARCHIVES),
                    description="Which state archives the state_* streams read: latest (the newest at each "
                                "sync, a full snapshot), daily (the last of each day) or all."),
        th.Property("emit_activate_version_messages", th.BooleanType, default=False,
                    description="singer-sdk's setting: ACTIVATE_VERSION messages for the streams read whole "
                                "each sync (state_archives and the state_* snapshots of state_archives=latest; "
                                "for state_*, sent once the whole snapshot has been read), so that a target can "
                                "mark the rows gone from the newest snapshot deleted."),
        th.Property("paths", th.ObjectType(additional_properties=th.StringType),
                    description="Stream name to URL path (default /api/reporting); key 'token' for the "
                                "OAuth token path (default /oauth2/token)."),
        th.Property("request_timeout", th.NumberType, default=300,
                    description="Seconds before a request times out (it is then retried)."),
        th.Property("max_retries", th.IntegerType, default=5,
                    description="Attempts per request on 429, 5xx, timeouts and dropped connections."),
        th.Property("retry_backoff_seconds", th.NumberType, default=2,
                    description="First wait between retries, doubled each time; Retry-After wins when sent."),
        th.Property("verify_ssl", th.BooleanType, default=True, description="Verify the appliance's TLS certificate."),
        th.Property("ca_bundle", th.StringType, description="Path of a CA bundle for the appliance's private CA."),
    ).to_dict()

    def check_config(self, config: t.Mapping[str, t.Any]) -> list[str]:
        return check_config(config)

    @cached_property
    def oauth(self) -> OAuthClientCredentials:
        """The one token holder every stream shares (an account has at most 30 valid tokens)."""
        config = self.config
        path = (config.get("paths") or {}).get("token", DEFAULT_TOKEN_PATH)
        return OAuthClientCredentials(
            config["api_url"].rstrip("/") + path, config["client_id"], config["client_secret"],
            verify=config.get("ca_bundle") or config.get("verify_ssl", True),
            timeout=float(config.get("request_timeout", 300)),
            max_tries=int(config.get("max_retries", 5)),
            backoff=float(config.get("retry_backoff_seconds", 2)),
            logger=self.logger,
        )

    def discover_streams(self) -> list:
        return [stream_type(tap=self) for stream_type in STREAM_TYPES]


def check_config(config: t.Mapping[str, t.Any]) -> list[str]:
    """What the JSON schema cannot say about a config, as readable errors."""
    errors = []
    for name in ("api_url", "client_id", "client_secret"):
        if name in config and not str(config[name] or "").strip():
            errors.append(f"{name} is empty")
    url = str(config.get("api_url") or "")
    if url and not url.startswith(("http://", "https://")):
        errors.append(f"api_url {url!r} must start with https:// (or http://)")
    for name in ("start_date", "end_date"):
        value = config.get(name)
        if value:
            try:
                dt.date.fromisoformat(str(value)[:10])
            except ValueError:
                errors.append(f"{name} {value!r} is not an ISO date (YYYY-MM-DD or a date-time)")
    if config.get("start_date") and config.get("end_date") and str(config["end_date"])[:10] < str(config["start_date"])[:10]:
        errors.append("end_date is before start_date")
    if int(config.get("lookback_seconds", 60)) < 0:
        errors.append("lookback_seconds must be 0 or more")
    if int(config.get("unended_session_days", 3)) < 0:
        errors.append("unended_session_days must be 0 or more")
    if int(config.get("window_days", 1)) < 1:
        errors.append("window_days must be 1 or more")
    if config.get("license_group_by", "day") not in GROUP_BY:
        errors.append(f"license_group_by must be one of {', '.join(GROUP_BY)}")
    for name in ID_FILTERS:
        value = config.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            errors.append(f"{name} must be a numeric id (an integer, 1 or more), not {value!r}")
    if config.get("survey_rep_id") is not None and config.get("survey_team_id") is not None:
        errors.append("survey_rep_id and survey_team_id cannot both be set (the report filters by one of them)")
    for name, (pattern, forms) in FILTER_PATTERNS.items():
        value = config.get(name)
        if value is not None and not (isinstance(value, str) and re.match(pattern, value)):
            errors.append(f"{name} must be {forms}, not {value!r}")
    if config.get("state_archives", "latest") not in STATE_ARCHIVES:
        errors.append(f"state_archives must be one of {', '.join(STATE_ARCHIVES)}")
    if int(config.get("max_retries", 5)) < 1:
        errors.append("max_retries must be 1 or more")
    if float(config.get("request_timeout", 300)) <= 0:
        errors.append("request_timeout must be more than 0 seconds")
    if float(config.get("retry_backoff_seconds", 2)) < 0:
        errors.append("retry_backoff_seconds must not be negative")
    return errors


if __name__ == "__main__":
    TapBeyondTrust.cli()
