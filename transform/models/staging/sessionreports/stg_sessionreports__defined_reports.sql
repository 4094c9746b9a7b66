-- Fudo PAM report definitions: `type` says what a report's rows are.
with unioned as (
    {{ union_accounts('tap_sessionreports', 'defined_reports', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'id'], 'modified_at desc nulls last') }}
)

select
    {{ digest(['source_account', 'id']) }} as defined_report_key,
    source_account,
    cast(id as {{ dbt.type_string() }}) as defined_report_id,
    cast(title as {{ dbt.type_string() }}) as title,
    cast("type" as {{ dbt.type_string() }}) as report_type,
    cast(user_id as {{ dbt.type_string() }}) as user_id,
    cast(query_filter as {{ dbt.type_string() }}) as query_filter,
    cast(query_order as {{ dbt.type_string() }}) as query_order,
    cast(predefined as boolean) as is_predefined,
    cast(has_subscription as boolean) as has_subscription,
    cast(subscribed as boolean) as is_subscribed,
    cast(created_at as timestamp) as created_at,
    cast(modified_at as timestamp) as modified_at,
    {{ to_json('extra') }} as extra
from latest
