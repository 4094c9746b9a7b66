-- Fudo PAM generated reports (ids are 64-bit integers kept as text).
with unioned as (
    {{ union_accounts('tap_sessionreports', 'reports', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'id'], 'modified_at desc nulls last') }}
)

select
    {{ digest(['source_account', 'id']) }} as report_key,
    source_account,
    cast(id as {{ dbt.type_string() }}) as report_id,
    cast(defined_report_id as {{ dbt.type_string() }}) as defined_report_id,
    cast(title as {{ dbt.type_string() }}) as title,
    cast(status as {{ dbt.type_string() }}) as status,
    cast(is_ready as boolean) as is_ready,
    cast(user_id as {{ dbt.type_string() }}) as user_id,
    cast(query_filter as {{ dbt.type_string() }}) as query_filter,
    cast(query_order as {{ dbt.type_string() }}) as query_order,
    cast(created_at as timestamp) as created_at,
    cast(generated_at as timestamp) as generated_at,
    cast(modified_at as timestamp) as modified_at,
    {{ to_json('extra') }} as extra
from latest
