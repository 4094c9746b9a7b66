-- BeyondTrust Jump Item events (created, changed, sessions started ...).
{{ beyondtrust_latest_events('jump_items') }}

select
    {{ beyondtrust_event_columns('jump_item_event_id') }},
    cast(jump_item_id as bigint) as jump_item_id,
    cast(jump_item_name as {{ dbt.type_string() }}) as jump_item_name,
    cast(jump_item_type as {{ dbt.type_string() }}) as jump_item_type,
    cast({{ json_text('jump_group', 'name') }} as {{ dbt.type_string() }}) as jump_group_name,
    {{ beyondtrust_performed_by() }},
    cast("data" as {{ dbt.type_string() }}) as detail,
    {{ to_json('extra') }} as extra
from latest
