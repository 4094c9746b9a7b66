-- BeyondTrust Vault account activity (credential check-outs, rotations ...).
with unioned as (
    {{ union_accounts('tap_beyondtrust', 'vault_account_activity', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'event_id'], '"timestamp" desc nulls last') }}
)

select
    {{ digest(['source_account', 'event_id']) }} as vault_activity_id,
    source_account,
    cast(event_id as {{ dbt.type_string() }}) as event_id,
    cast("timestamp" as timestamp) as happened_at,
    cast(event_type as {{ dbt.type_string() }}) as event_type,
    cast(account_id as bigint) as account_id,
    cast(coalesce(account_name, account) as {{ dbt.type_string() }}) as account_name,
    cast({{ json_text('performed_by', 'name') }} as {{ dbt.type_string() }}) as performed_by_name,
    cast({{ json_text('performed_by', 'type') }} as {{ dbt.type_string() }}) as performed_by_type,
    cast({{ json_text('performed_by', 'id') }} as bigint) as performed_by_id,
    cast("data" as {{ dbt.type_string() }}) as detail,
    {{ to_json('extra') }} as extra
from latest
