"""tap-beyondtrust: every optional filter the document gives a report is a setting,
sent on that report's requests only when set (checked in the sandbox's request
log), and the rows are those the filter names."""

from __future__ import annotations

import pytest

from tests.beyondtrust.test_sync import TAP, ok
from tests.beyondtrust.test_sync import config_for as _config_for
from tests.taputil import run_tap

ALL_FILTER_PARAMS = {"SupportCustExitSurvey": ("site_id",), "SupportRepExitSurvey": ("site_id",),
                     "SupportTeam": ("team_id",), "JumpItem": ("jump_group", "jump_item", "performed_by"),
                     "SupportSession": ("limit",), "VaultAccountActivity": ("limit",)}
STREAMS = ["support_sessions", "customer_exit_surveys", "rep_exit_surveys", "support_teams", "team_activity",
           "jump_items", "vault_account_activity"]


@pytest.fixture
def small(sandbox_factory):
    return sandbox_factory("beyondtrust", scale=160, days=2, team_events_per_day=20, jump_events_per_day=40,
                           vault_events_per_day=20, archive_count=1, archive_events=10)


def config_for(server, **extra):
    return _config_for(server, window_days=3, **extra)


def calls(server, report):
    return [c for c in server.logged("/api/reporting") if c["params"].get("generate_report") == report]


def test_no_filter_is_sent_unless_set(small):
    run = ok(run_tap(TAP, config_for(small), streams=STREAMS))
    assert run.records("jump_items") and run.records("support_sessions")
    for report, params in ALL_FILTER_PARAMS.items():
        asked = calls(small, report)
        assert asked, report
        assert not [c for c in asked for p in params if p in c["params"]], report
    surveys = calls(small, "SupportCustExitSurvey")
    assert {(c["params"]["report_type"], c["params"]["id"]) for c in surveys} == {("rep", "all"), ("team", "all")}


def _jump_item_of(server):
    """A Jump Item the sandbox has events for, as <id>:<type>."""
    from tests.sandbox.beyondtrust import JUMP_TYPES

    item, *_ = server.app.jump_event_parts(3)
    return item, f"{item}:{JUMP_TYPES[item % len(JUMP_TYPES)]}"


# (setting, value, stream, report, param, value sent, check of every row)
CASES = [
    ("survey_site_id", 1, "customer_exit_surveys", "SupportCustExitSurvey", "site_id", "1",
     lambda r, app: r["public_site"]["id"] == 1),
    ("survey_rep_id", 5, "rep_exit_surveys", "SupportRepExitSurvey", "id", "5",
     lambda r, app: r["primary_rep"]["id"] == 5),
    ("survey_rep_id", 2, "customer_exit_surveys", "SupportCustExitSurvey", "id", "2",
     lambda r, app: r["primary_rep"]["id"] == 2),
    ("survey_team_id", 3, "customer_exit_surveys", "SupportCustExitSurvey", "id", "3",
     lambda r, app: r["primary_team"]["id"] == 3),
    ("team_id", 2, "support_teams", "SupportTeam", "team_id", "2", lambda r, app: r["id"] == 2),
    ("team_id", 3, "team_activity", "SupportTeam", "team_id", "3", lambda r, app: r["team_id"] == 3),
    ("jump_group", "'shared:2'", "jump_items", "JumpItem", "jump_group", "'shared:2'",
     lambda r, app: (r["jump_group"]["type"], r["jump_group"]["id"]) == ("shared", 2)),
    ("jump_group", "personal:1", "jump_items", "JumpItem", "jump_group", "personal:1",
     lambda r, app: (r["jump_group"]["type"], r["jump_group"]["id"]) == ("personal", 1)),
    ("jump_performed_by", "user:5", "jump_items", "JumpItem", "performed_by", "user:5",
     lambda r, app: r["performed_by"]["id"] == 5),
    ("support_session_limit", "rep:4", "support_sessions", "SupportSession", "limit", "rep:4",
     lambda r, app: r["primary_rep"]["id"] == 4),
    ("support_session_limit", "site:2", "support_sessions", "SupportSession", "limit", "site:2",
     lambda r, app: r["public_site"]["id"] == 2),
    ("vault_limit", "rep:2", "vault_account_activity", "VaultAccountActivity", "limit", "rep:2",
     lambda r, app: r["performed_by"]["id"] == 2),
]


@pytest.mark.parametrize(("setting", "value", "stream", "report", "param", "sent", "check"), CASES,
                         ids=[f"{c[0]}-{c[2]}-{c[1]}" for c in CASES])
def test_a_filter_setting_is_sent_and_narrows_the_rows(small, setting, value, stream, report, param, sent, check):
    run = ok(run_tap(TAP, config_for(small, **{setting: value}), streams=[stream]))
    rows = run.records(stream)
    assert rows, "the filter leaves some rows"
    assert all(check(r, small.app) for r in rows), "only the rows the filter names"
    asked = calls(small, report)
    windowed = [c for c in asked if "lsids" not in c["params"]]
    assert windowed and all(c["params"].get(param) == sent for c in windowed)
    unfiltered = ok(run_tap(TAP, config_for(small), streams=[stream]))
    assert len(unfiltered.records(stream)) > len(rows)


def test_jump_item_filter(small):
    item, value = _jump_item_of(small)
    run = ok(run_tap(TAP, config_for(small, jump_item=value), streams=["jump_items"]))
    rows = run.records("jump_items")
    assert rows and {r["jump_item_id"] for r in rows} == {item}
    assert all(c["params"]["jump_item"] == value for c in calls(small, "JumpItem"))


def test_a_survey_rep_id_asks_only_by_that_rep(small):
    ok(run_tap(TAP, config_for(small, survey_rep_id=3), streams=["customer_exit_surveys"]))
    assert {(c["params"]["report_type"], c["params"]["id"]) for c in calls(small, "SupportCustExitSurvey")} == {
        ("rep", "3")}


def test_support_session_limit_also_bounds_the_sessions_without_an_end(small):
    """limit is ignored with lsids (the document): with a limit, the unended pass asks for the
    started sessions by start_time with the limit instead."""
    app = small.app
    run = ok(run_tap(TAP, config_for(small, support_session_limit="site:2"),
                     streams=["support_sessions", "support_session_events"]))
    sessions = run.records("support_sessions")
    index = {app.lsid(i): i for i in range(app.session_total)}
    unended = [r for r in sessions if r["end_time"] is None]
    assert unended and all(index[r["lsid"]] % 2 == 1 for r in sessions), "site 2 only, ended or not"
    expected = {app.lsid(i) for i in range(app.session_total) if i % 2 == 1}
    assert {r["lsid"] for r in sessions} == expected
    assert {e["lsid"] for e in run.records("support_session_events")} == expected
    session_calls = calls(small, "SupportSession")
    assert session_calls and all(c["params"]["limit"] == "site:2" and "lsids" not in c["params"]
                                 for c in session_calls)


@pytest.mark.parametrize(("change", "message"), [
    ({"survey_site_id": 0}, "survey_site_id"),
    ({"survey_rep_id": "all"}, "survey_rep_id"),
    ({"survey_rep_id": 1, "survey_team_id": 2}, "survey_team_id cannot both be set"),
    ({"team_id": -3}, "team_id"),
    ({"jump_group": "shared"}, "jump_group"),
    ({"jump_item": "5:ftp"}, "jump_item"),
    ({"jump_performed_by": "admin:1"}, "jump_performed_by"),
    ({"support_session_limit": "rep:abc"}, "support_session_limit"),
    ({"vault_limit": "everyone"}, "vault_limit"),
    ({"state_archives": "weekly"}, "state_archives"),
])
def test_a_bad_filter_fails_before_any_request_naming_the_setting(small, change, message):
    run = run_tap(TAP, config_for(small, **change))
    assert run.returncode != 0
    assert message in run.stderr
    assert small.logged() == []
