-- Controlio audit log: what console logins did (row_key: the tap's digest key).
with unioned as (
    {{ union_accounts('tap_controlio', 'audit_log', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'row_key'], 'inserted_at desc nulls last') }}
)

select
    {{ digest(['source_account', 'row_key']) }} as audit_log_id,
    source_account,
    cast(row_key as {{ dbt.type_string() }}) as row_key,
    cast(id as bigint) as audit_id,
    cast(inserted_at as timestamp) as happened_at,
    cast(login_id as bigint) as login_id,
    cast(email as {{ dbt.type_string() }}) as email,
    cast(ip as {{ dbt.type_string() }}) as ip,
    cast(action as {{ dbt.type_string() }}) as action,
    cast(api_type as {{ dbt.type_string() }}) as api_type,
    cast(object_type as {{ dbt.type_string() }}) as object_type,
    cast(object_id as bigint) as object_id,
    cast(window_start as date) as window_start_date,
    {{ to_json('extra') }} as extra
from latest
