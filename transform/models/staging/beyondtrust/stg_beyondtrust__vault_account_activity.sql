-- BeyondTrust Vault account activity (credential check-outs, rotations ...).
{{ beyondtrust_latest_events('vault_account_activity') }}

select
    {{ beyondtrust_event_columns('vault_activity_id') }},
    cast(account_id as bigint) as account_id,
    cast(coalesce(account_name, account) as {{ dbt.type_string() }}) as account_name,
    {{ beyondtrust_performed_by() }},
    cast("data" as {{ dbt.type_string() }}) as detail,
    {{ to_json('extra') }} as extra
from latest
