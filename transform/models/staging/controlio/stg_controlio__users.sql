-- Controlio monitored users (the people whose computers are watched).
with unioned as (
    {{ union_accounts('tap_controlio', 'users', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'id'], 'updated_at desc nulls last') }}
)

select
    {{ digest(['source_account', 'id']) }} as user_key,
    source_account,
    cast(id as bigint) as user_id,
    cast("name" as {{ dbt.type_string() }}) as user_name,
    cast(friendly_name as {{ dbt.type_string() }}) as friendly_name,
    cast({{ json_text('extra', 'domain') }} as {{ dbt.type_string() }}) as domain_name,
    cast(login_id as bigint) as login_id,
    cast(parent_id as bigint) as department_id,
    cast(description as {{ dbt.type_string() }}) as description,
    cast(blocked as boolean) as is_blocked,
    cast(deleted as boolean) as is_deleted,
    cast(inserted_at as timestamp) as inserted_at,
    cast(updated_at as timestamp) as updated_at,
    cast(last_connect_time as timestamp) as last_connected_at,
    cast(last_upload_time as timestamp) as last_uploaded_at,
    {{ to_json('extra') }} as extra
from latest
