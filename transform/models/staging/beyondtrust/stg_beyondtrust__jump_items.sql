-- BeyondTrust Jump Item events (created, changed, sessions started ...).
with unioned as (
    {{ union_accounts('tap_beyondtrust', 'jump_items', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'event_id'], '"timestamp" desc nulls last') }}
)

select
    {{ digest(['source_account', 'event_id']) }} as jump_item_event_id,
    source_account,
    cast(event_id as {{ dbt.type_string() }}) as event_id,
    cast("timestamp" as timestamp) as happened_at,
    cast(event_type as {{ dbt.type_string() }}) as event_type,
    cast(jump_item_id as bigint) as jump_item_id,
    cast(jump_item_name as {{ dbt.type_string() }}) as jump_item_name,
    cast(jump_item_type as {{ dbt.type_string() }}) as jump_item_type,
    cast({{ json_text('jump_group', 'name') }} as {{ dbt.type_string() }}) as jump_group_name,
    cast({{ json_text('performed_by', 'name') }} as {{ dbt.type_string() }}) as performed_by_name,
    cast({{ json_text('performed_by', 'type') }} as {{ dbt.type_string() }}) as performed_by_type,
    cast({{ json_text('performed_by', 'id') }} as bigint) as performed_by_id,
    cast("data" as {{ dbt.type_string() }}) as detail,
    {{ to_json('extra') }} as extra
from latest
