-- BeyondTrust team activity events.
{{ beyondtrust_latest_events('team_activity') }}

select
    {{ beyondtrust_event_columns('team_activity_id') }},
    cast(team_id as bigint) as team_id,
    cast(team_name as {{ dbt.type_string() }}) as team_name,
    {{ beyondtrust_performed_by() }},
    cast({{ json_text('performed_by', 'gsnumber') }} as bigint) as performed_by_gsnumber,
    cast(body as {{ dbt.type_string() }}) as body,
    {{ to_json('"data"') }} as event_data,
    {{ to_json('extra') }} as extra
from latest
