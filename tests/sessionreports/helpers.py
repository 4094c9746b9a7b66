"""What the Fudo tests share: the tap's name, config and record keys."""

from __future__ import annotations

TAP = "tap-sessionreports"
TOKEN = "sandbox-sessionreports-token"
LIST_STREAMS = ("reports", "defined_reports", "report_subscriptions")


def config_for(server, **extra):
    """The config of a sync of ``server``: with the sandbox's start_date when it has one."""
    start = getattr(server.app, "start_date", None)
    return {
        "api_url": server.url + "/",  # a trailing slash is tolerated
        "api_token": TOKEN,
        "retry_backoff_seconds": 0.01,
        "request_timeout": 5,
        **({"start_date": start} if start else {}),
        **extra,
    }


def keys(run, stream):
    """The primary keys of a run's records, as a list (duplicates kept)."""
    if stream == "report_rows":
        return [(r["report_id"], r["row_number"]) for r in run.records(stream)]
    return [r["id"] for r in run.records(stream)]


def distinct_counts(run):
    return {stream: len(set(keys(run, stream))) for stream in (*LIST_STREAMS, "report_rows")}
