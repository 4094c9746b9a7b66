-- Controlio console logins (administrators and viewers of the dashboard).
with unioned as (
    {{ union_accounts('tap_controlio', 'logins', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'id'], 'updated_at desc nulls last') }}
)

select
    {{ digest(['source_account', 'id']) }} as login_key,
    source_account,
    cast(id as bigint) as login_id,
    cast(email as {{ dbt.type_string() }}) as email,
    cast(first_name as {{ dbt.type_string() }}) as first_name,
    cast(last_name as {{ dbt.type_string() }}) as last_name,
    cast("role" as {{ dbt.type_string() }}) as role,
    cast(mfa as boolean) as is_mfa_enabled,
    cast(verified as boolean) as is_verified,
    cast(inserted_at as timestamp) as inserted_at,
    cast(updated_at as timestamp) as updated_at,
    {{ to_json('extra') }} as extra
from latest
