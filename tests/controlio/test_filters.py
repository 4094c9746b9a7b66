"""tap-controlio: every documented filter is a setting, sent only when set and
only on the endpoints whose document section gives it (the sandbox's request
log), validated before any request."""

from __future__ import annotations

import pytest
import requests

from tests.controlio.test_sync import TOKEN, catalog_for, config_for, sync

S = "/api/v1/statistics/"
AUDIT = {"/api/v1/audit_log"}
# read report by report from vendor-docs/controlio-api-1.1.txt
OPERATIONS = {S + p for p in ("operationsByUsers", "operationsByDays", "multitaskingByUsers", "multitaskingByDays")}
DISTRIBUTION = {S + "categoriesDistributionByUsers"}
RAW = {S + "detailedActivities", S + "usersActivitiesTimeline"}
KEYWORD_SEARCH = OPERATIONS | RAW | {S + p for p in (
    "activities", "alerts", "categories", "detailedFiles", "emails", "keystrokes", "printing", "searches", "users")}

# setting, value, query parameter, its value in the request, the endpoints that take it
FILTERS = [
    ("level", 3, "level", "3", OPERATIONS | {S + "activities"}),
    ("activities", [2, 3], "activities", "2,3", OPERATIONS | RAW),
    ("computers", [1, 2], "computers", "1,2", OPERATIONS | DISTRIBUTION),
    ("categories", [2], "categories", "2", OPERATIONS | DISTRIBUTION),
    ("weekdays", [0, 3, 6], "weekdays", "0,3,6", OPERATIONS | DISTRIBUTION),
    ("hours", [0, 7, 23], "hours", "0,7,23", OPERATIONS | DISTRIBUTION),
    ("string_to_match", "Document 1", "string_to_match", "Document 1", KEYWORD_SEARCH),
    ("audit_object_id", 7, "object_id", "7", AUDIT),
    ("audit_ip", "192.0.2.1", "ip", "192.0.2.1", AUDIT),
    ("audit_apply_timezone", True, "apply_timezone", "true", AUDIT),
]
PARAMS = {f[2] for f in FILTERS}


@pytest.fixture
def small(sandbox_factory):
    return sandbox_factory("controlio", scale=300, days=2, users=3, computers=2, activities=4, categories=2)


def every_stream():
    return [s["tap_stream_id"] for s in catalog_for([])["streams"]]


def test_no_filter_is_sent_unless_set(small):
    run = sync(config_for(small), streams=every_stream())
    assert run.returncode == 0, run.stderr[-3000:]
    logged = small.logged()
    assert len({r["path"] for r in logged}) >= 36
    assert not [r for r in logged if PARAMS & set(r["params"])]


@pytest.mark.parametrize(("setting", "value", "param", "sent", "paths"), FILTERS, ids=[f[0] for f in FILTERS])
def test_a_filter_is_sent_on_exactly_the_endpoints_that_document_it(small, setting, value, param, sent, paths):
    run = sync(config_for(small, **{setting: value}), streams=every_stream())
    assert run.returncode == 0, run.stderr[-3000:]
    logged = small.logged()
    carrying = {r["path"] for r in logged if param in r["params"]}
    assert carrying == paths
    assert {r["params"][param] for r in logged if param in r["params"]} == {sent}
    # on those endpoints, every request carries it (each window, page and parent)
    assert all(param in r["params"] for r in logged if r["path"] in paths)
    # and no other filter of this list rides along
    assert not [r for r in logged if (PARAMS - {param}) & set(r["params"])]


def test_filters_narrow_the_rows_where_the_api_applies_them(small):
    app = small.app
    day = app.first_day
    object_id = app._audit_rows(day)[0]["object_id"]
    config = config_for(small, level=3, activities=[2], audit_object_id=object_id, audit_ip="192.0.2.1")
    run = sync(config, streams=["activities_report", "detailed_activities", "audit_log"])
    assert run.returncode == 0, run.stderr[-3000:]
    # activity 3 is the one at level 3 (of 4 activities), one row per day
    assert [r["activity_id"] for r in run.records("activities_report")] == [3, 3]
    raw = run.records("detailed_activities")
    assert raw and {r["activity_id"] for r in raw} == {2}
    expected = [r for d in (day, app.today) for r in app._audit_rows(d)
                if r["object_id"] == object_id and r["ip"] == "192.0.2.1"]
    assert len(run.records("audit_log")) == len(expected)
    assert all(r["object_id"] == object_id and r["ip"] == "192.0.2.1" for r in run.records("audit_log"))

    keyword = sync(config_for(small, string_to_match="document 1"), streams=["detailed_activities"])
    assert keyword.returncode == 0, keyword.stderr[-3000:]
    titles = [r["extra"]["title"] for r in keyword.records("detailed_activities")]
    assert 0 < len(titles) < 300 and all("document 1" in t.lower() for t in titles)


BAD = [
    ({"level": 5}, "config['level']"),
    ({"level": "3"}, "config['level']"),
    ({"activities": ["x"]}, "config['activities']"),
    ({"computers": "1,2"}, "config['computers']"),
    ({"categories": [1.5]}, "config['categories']"),
    ({"weekdays": [1, 7]}, "config['weekdays']"),
    ({"hours": [-1]}, "config['hours']"),
    ({"string_to_match": ""}, "config['string_to_match']"),
    ({"audit_object_id": 0}, "config['audit_object_id']"),
    ({"audit_ip": "203.0.113.256"}, "'203.0.113.256' does not match"),
    ({"audit_apply_timezone": "yes"}, "config['audit_apply_timezone']"),
]


@pytest.mark.parametrize(("change", "message"), BAD, ids=[next(iter(c)) + "=" + repr(c[next(iter(c))]) for c, _ in BAD])
def test_a_bad_filter_fails_before_any_request_naming_the_setting(small, change, message):
    run = sync(config_for(small, **change))
    assert run.returncode != 0
    assert message in run.stderr
    assert small.logged() == []


def test_the_sandbox_checks_filters_as_documented(small):
    headers = {"Authorization": f"Bearer {TOKEN}"}

    def get(path, **params):
        return requests.get(f"{small.url}{path}", headers=headers, params=params, timeout=10)

    assert get(S + "operationsByUsers", weekdays="1,3", hours="0,23", level="4", categories="1").status_code == 200
    for path, params in [
        (S + "logons", {"level": "3"}),  # not a filter of this report
        (S + "categoriesDistributionByUsers", {"activities": "1"}),
        ("/api/v1/audit_log", {"weekdays": "1"}),
        (S + "operationsByDays", {"weekdays": "7"}),
        (S + "operationsByDays", {"hours": "1,x"}),
        (S + "activities", {"level": "5"}),
        ("/api/v1/audit_log", {"ip": "203.0.113"}),  # not a whole address
        ("/api/v1/audit_log", {"object_id": "0"}),
        ("/api/v1/audit_log", {"apply_timezone": "1"}),
    ]:
        response = get(path, **params)
        assert response.status_code == 400, (path, params, response.text)
        assert next(iter(params)) in response.json()["error"]


def test_collections_are_read_in_ascending_id_order_as_the_readme_says(small):
    streams = ["activities", "categories", "computers", "departments", "logins", "rules", "users"]
    run = sync(config_for(small, page_size=2), streams=streams)
    assert run.returncode == 0, run.stderr[-3000:]
    for stream in streams:
        requests_ = small.logged(f"/api/v1/{stream}$")
        assert requests_ and all(r["params"]["sort_by"] == "id" and r["params"]["sort_direction"] == "asc"
                                 for r in requests_), stream
        ids = [r["id"] for r in run.records(stream)]
        assert ids == sorted(ids) == list(range(1, len(ids) + 1)), stream
    # the document's default order is another: the sandbox's, by updated_at, descending
    headers = {"Authorization": f"Bearer {TOKEN}"}
    unsorted = []
    for stream in streams:
        default = requests.get(f"{small.url}/api/v1/{stream}", headers=headers, timeout=10).json()["data"]
        if [r["id"] for r in default] != sorted(r["id"] for r in default):
            unsorted.append(stream)
    assert unsorted  # so the ascending ids above are the tap's sort_by, not the server's habit
    bad = requests.get(f"{small.url}/api/v1/users", headers=headers, params={"sort_by": "nope"}, timeout=10)
    assert bad.status_code == 400 and "sort_by" in bad.json()["error"]


@pytest.mark.parametrize("sparse", [False, True], ids=["full-rows", "sparse-rows"])
def test_every_stream_keeps_undocumented_fields_in_extra(sandbox_factory, sparse):
    server = sandbox_factory("controlio", scale=300, days=2, users=3, computers=2, activities=4, categories=2,
                             sparse_rows=sparse)
    streams = every_stream()
    run = sync(config_for(server), streams=streams)
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.counts()) == set(streams)
    for stream in streams:
        properties = run.schema(stream)["schema"]["properties"]
        assert "extra" in properties and "object" in properties["extra"]["type"], stream
        records = run.records(stream)
        kept = [r for r in records if any(k.startswith("undocumented_") for k in r["extra"])]
        assert kept, stream
        assert not [k for r in records for k in r if k.startswith("undocumented_")], stream  # never a column
        for record in kept:
            (value,) = [v for k, v in record["extra"].items() if k.startswith("undocumented_")]
            assert set(value) == {"source", "ref"} and isinstance(value["ref"], int), stream
