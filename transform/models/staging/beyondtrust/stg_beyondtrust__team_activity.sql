-- BeyondTrust team activity events.
with unioned as (
    {{ union_accounts('tap_beyondtrust', 'team_activity', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'event_id'], '"timestamp" desc nulls last') }}
)

select
    {{ digest(['source_account', 'event_id']) }} as team_activity_id,
    source_account,
    cast(event_id as {{ dbt.type_string() }}) as event_id,
    cast("timestamp" as timestamp) as happened_at,
    cast(event_type as {{ dbt.type_string() }}) as event_type,
    cast(team_id as bigint) as team_id,
    cast(team_name as {{ dbt.type_string() }}) as team_name,
    cast({{ json_text('performed_by', 'name') }} as {{ dbt.type_string() }}) as performed_by_name,
    cast({{ json_text('performed_by', 'type') }} as {{ dbt.type_string() }}) as performed_by_type,
    cast({{ json_text('performed_by', 'id') }} as bigint) as performed_by_id,
    cast({{ json_text('performed_by', 'gsnumber') }} as bigint) as performed_by_gsnumber,
    cast(body as {{ dbt.type_string() }}) as body,
    {{ to_json('"data"') }} as event_data,
    {{ to_json('extra') }} as extra
from latest
