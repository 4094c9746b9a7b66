"""The seven collections (full tables) and the audit log (date windows)."""

from __future__ import annotations

import typing as t

from singer_sdk import typing as th
from singer_sdk.helpers.types import Context
from typing_extensions import override

from tap_controlio.client import (
    EXTRA,
    ROW_KEY,
    ControlioStream,
    OffsetPaginator,
    WindowedStream,
    WindowPage,
    query_value,
    row_digest,
)

ANY_OBJECT = th.ObjectType(additional_properties=True)
#: the document shows every list as ``[ ]``, without an item type: items of any type
ANY_ARRAY = th.ArrayType(th.AnyType())


def _props(*properties: th.Property) -> dict:
    """A schema with an ``extra`` object column for the fields the document does not name."""
    return th.PropertiesList(
        *properties,
        th.Property(EXTRA, ANY_OBJECT, description="Every field the API returned that is not declared above."),
    ).to_dict()


def _stamps() -> tuple[th.Property, th.Property]:
    return (th.Property("inserted_at", th.DateTimeType), th.Property("updated_at", th.DateTimeType))


class CollectionStream(ControlioStream):
    """A full table read with ``limit``/``offset``, in ascending ``id`` order.

    The document's default order is ``sort_direction=desc`` by a key it does
    not name; ``sort_by=id`` (every collection's rows have a unique ``id``) is
    an order that does not move while the pages are read, so no row is
    skipped or read twice across pages."""

    #: the documented ``sort_by`` parameter: a unique field of every collection row
    sort_by = "id"

    primary_keys = ("id",)
    #: the key under which a record's id is handed to child streams
    child_context_key: str | None = None

    @override
    def get_new_paginator(self) -> OffsetPaginator:
        return OffsetPaginator(start_value=0, page_size=self.page_size)

    @override
    def get_url_params(self, context: Context | None, next_page_token: int | None) -> dict[str, t.Any]:
        return {"limit": self.page_size, "offset": next_page_token or 0, "sort_by": self.sort_by,
                "sort_direction": "asc"}

    @override
    def get_child_context(self, record: dict, context: Context | None) -> dict | None:
        if self.child_context_key is None:
            return None
        return {self.child_context_key: record["id"]}


class ActivitiesStream(CollectionStream):
    name = "activities"
    default_path = "/api/v1/activities"
    child_context_key = "activity_id"
    schema = _props(
        th.Property("id", th.IntegerType, required=True),
        th.Property("category", ANY_OBJECT),
        th.Property("category_id", th.IntegerType),
        th.Property("custom_levels", ANY_ARRAY),
        th.Property("icon", ANY_OBJECT),
        th.Property("level", th.IntegerType, description="0 very distracting ... 4 very productive"),
        th.Property("level_redefined", th.BooleanType),
        th.Property("name", th.StringType),
        th.Property("type", th.IntegerType),
        *_stamps(),
    )


class CategoriesStream(CollectionStream):
    name = "categories"
    default_path = "/api/v1/categories"
    schema = _props(
        th.Property("id", th.IntegerType, required=True),
        th.Property("custom_levels", ANY_ARRAY),
        th.Property("description", th.StringType),
        th.Property("is_default", th.BooleanType),
        th.Property("level", th.IntegerType),
        th.Property("name", th.StringType),
        th.Property("parent_id", th.IntegerType),
        th.Property("parent_name", th.StringType),
        *_stamps(),
    )


class ComputersStream(CollectionStream):
    name = "computers"
    default_path = "/api/v1/computers"
    datetime_fields = ("inserted_at", "updated_at", "last_connect_time", "last_upload_time")
    schema = _props(
        th.Property("id", th.IntegerType, required=True),
        th.Property("blocked", th.BooleanType),
        th.Property("city", th.StringType),
        th.Property("client_category_version", th.StringType),
        th.Property("client_path", th.StringType),
        th.Property("client_version", th.StringType),
        th.Property("country", th.StringType),
        th.Property("country_code", th.IntegerType),
        th.Property("deleted", th.BooleanType),
        th.Property("description", th.StringType),
        th.Property("friendly_name", th.StringType),
        th.Property("install_guid", th.StringType),
        th.Property("ip", th.StringType),
        th.Property("last_connect_time", th.DateTimeType),
        th.Property("last_upload_time", th.DateTimeType),
        th.Property("name", th.StringType),
        th.Property("options_id", th.IntegerType),
        th.Property("options_inherited", th.BooleanType),
        th.Property("os_version", th.StringType),
        th.Property("parent_id", th.IntegerType),
        th.Property("security_inherited", th.BooleanType),
        *_stamps(),
    )


class DepartmentsStream(CollectionStream):
    name = "departments"
    default_path = "/api/v1/departments"
    schema = _props(
        th.Property("id", th.IntegerType, required=True),
        th.Property("ancestors", ANY_ARRAY),
        th.Property("ancestors_names", ANY_ARRAY),
        th.Property("name", th.StringType),
        th.Property("parent_id", th.IntegerType),
        *_stamps(),
    )


class LoginsStream(CollectionStream):
    name = "logins"
    default_path = "/api/v1/logins"
    schema = _props(
        th.Property("id", th.IntegerType, required=True),
        th.Property("email", th.StringType),
        th.Property("first_name", th.StringType),
        th.Property("ip", th.StringType),
        th.Property("last_name", th.StringType),
        th.Property("mfa", th.BooleanType),
        th.Property("policy_id", th.IntegerType),
        th.Property("policy", ANY_OBJECT),
        th.Property("related_users", ANY_ARRAY),
        th.Property("role", th.StringType),
        *_stamps(),
        th.Property("users", ANY_ARRAY),
        th.Property("departments", ANY_ARRAY),
        th.Property("verified", th.BooleanType),
    )


class RulesStream(CollectionStream):
    name = "rules"
    default_path = "/api/v1/rules"
    schema = _props(
        th.Property("id", th.IntegerType, required=True),
        th.Property("data", ANY_OBJECT),
        th.Property("deleted", th.BooleanType),
        th.Property("departments", ANY_ARRAY),
        th.Property("departments_ex", ANY_ARRAY),
        th.Property("enabled", th.BooleanType),
        th.Property("name", th.StringType),
        *_stamps(),
        th.Property("users", ANY_ARRAY),
        th.Property("users_ex", ANY_ARRAY),
    )


class UsersStream(CollectionStream):
    name = "users"
    default_path = "/api/v1/users"
    child_context_key = "user_id"
    datetime_fields = ("inserted_at", "updated_at", "last_connect_time", "last_upload_time")
    schema = _props(
        th.Property("id", th.IntegerType, required=True),
        th.Property("ancestors", ANY_ARRAY),
        th.Property("ancestors_names", ANY_ARRAY),
        th.Property("blocked", th.BooleanType),
        th.Property("custom_options", ANY_OBJECT),
        th.Property("deleted", th.BooleanType),
        th.Property("description", th.StringType),
        th.Property("friendly_name", th.StringType),
        th.Property("is_custom_options", th.BooleanType),
        th.Property("last_connect_time", th.DateTimeType),
        th.Property("last_upload_time", th.DateTimeType),
        th.Property("login_id", th.IntegerType),
        th.Property("name", th.StringType),
        th.Property("nearest_options_id", th.IntegerType),
        th.Property("old_name", th.StringType),
        th.Property("options", ANY_OBJECT),
        th.Property("options_id", th.IntegerType),
        th.Property("options_inherited", th.BooleanType),
        th.Property("parent_id", th.IntegerType),
        th.Property("security_inherited", th.BooleanType),
        th.Property("sync_friendly_name", th.BooleanType),
        *_stamps(),
    )


#: audit_log list filter settings and the query parameter each becomes
AUDIT_LIST_FILTERS = {
    "audit_object_types": "object_types",
    "audit_api_types": "api_types",
    "audit_actions": "actions",
    "audit_logins": "logins",
    "audit_emails": "emails",
}
#: every audit_log filter setting and its query parameter
AUDIT_FILTERS = {
    **AUDIT_LIST_FILTERS,
    "audit_object_id": "object_id",
    "audit_ip": "ip",
    "audit_apply_timezone": "apply_timezone",
}


class AuditLogStream(WindowedStream):
    """Low-level events, read day window by day window (``start_time``/``end_time``).

    The document's sample is ``"data": [ ]``: no field of an entry is
    guaranteed, so its key is ``row_key``, the digest of the entry (an entry
    does not change once written)."""

    name = "audit_log"
    default_path = "/api/v1/audit_log"
    primary_keys = (ROW_KEY,)
    datetime_fields = ("inserted_at",)
    computed_fields = WindowedStream.computed_fields | {ROW_KEY}
    schema = _props(
        th.Property(ROW_KEY, th.StringType, required=True,
                    description="Digest of the entry as the API sent it (the document guarantees no id)"),
        th.Property("id", th.IntegerType),
        th.Property("action", th.StringType),
        th.Property("api_type", th.StringType),
        th.Property("object_type", th.StringType),
        th.Property("object_id", th.IntegerType),
        th.Property("login_id", th.IntegerType),
        th.Property("email", th.StringType),
        th.Property("ip", th.StringType),
        th.Property("inserted_at", th.DateTimeType, description="When the event happened (UTC)"),
        th.Property("window_start", th.DateType, required=True,
                    description="First day of the request window (the bookmark)"),
        th.Property("window_end", th.DateType, description="Last day of the request window"),
    )

    @override
    def record_from_row(self, row: dict, context: Context | None = None) -> dict:
        record = super().record_from_row(row, context)
        record[ROW_KEY] = row_digest(row)
        return record

    @override
    def get_url_params(self, context: Context | None, next_page_token: WindowPage | None) -> dict[str, t.Any]:
        params = super().get_url_params(context, next_page_token)  # the window
        assert next_page_token is not None
        params["limit"] = self.page_size
        params["offset"] = next_page_token.page
        for setting, param in AUDIT_FILTERS.items():
            value = self.config.get(setting)
            if value is not None and value != [] and value != "":  # sent only when set
                params[param] = query_value(value)
        return params


COLLECTION_STREAMS: list[type[CollectionStream]] = [
    ActivitiesStream,
    CategoriesStream,
    ComputersStream,
    DepartmentsStream,
    LoginsStream,
    RulesStream,
    UsersStream,
]
