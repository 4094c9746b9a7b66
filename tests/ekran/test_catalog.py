"""The discovered catalog: one stream, every documented field with its type."""

from __future__ import annotations

from tests.taputil import discover

EXPECTED = {
    "sessionId": (["integer"], None),
    "userId": (["integer", "null"], None),
    "userName": (["string", "null"], None),
    "clientGuid": (["string", "null"], None),
    "clientName": (["string", "null"], None),
    "loginDate": (["string", "null"], "date-time"),
    "logoutDate": (["string", "null"], "date-time"),
    "duration": (["string", "null"], None),
    "idleTime": (["string", "null"], None),
    "productivityTime": (["string", "null"], None),
    "durationSeconds": (["number", "null"], None),
    "idleTimeSeconds": (["number", "null"], None),
    "productivityTimeSeconds": (["number", "null"], None),
    "extra": (["object", "null"], None),
}


def test_the_catalog_declares_every_field_with_its_type():
    catalog = discover("tap-ekran", {"api_url": "https://ekran.example.com", "api_token": "x"})
    (stream,) = catalog["streams"]
    assert stream["tap_stream_id"] == "sessions"
    assert stream["key_properties"] == ["sessionId"]
    assert stream["replication_key"] == "loginDate"
    assert stream["replication_method"] == "INCREMENTAL"
    properties = stream["schema"]["properties"]
    assert {name: (spec["type"], spec.get("format")) for name, spec in properties.items()} == EXPECTED
    assert properties["extra"]["additionalProperties"] is True
    assert all(spec.get("description") for spec in properties.values())
    (root,) = [m["metadata"] for m in stream["metadata"] if m["breadcrumb"] == []]
    assert root["selected-by-default"] is True
