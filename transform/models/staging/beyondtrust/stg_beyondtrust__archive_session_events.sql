-- BeyondTrust event-archive session events (one per archive line).
with unioned as (
    {{ union_accounts('tap_beyondtrust', 'archive_session_events', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'archive_date', 'archive_index', 'line'], '"timestamp" desc nulls last') }}
)

select
    {{ digest(['source_account', 'archive_date', 'archive_index', 'line']) }} as archive_event_id,
    source_account,
    cast(archive_date as date) as archive_date,
    cast(archive_index as bigint) as archive_index,
    cast(line as bigint) as line,
    cast(lsid as {{ dbt.type_string() }}) as session_id,
    cast("timestamp" as timestamp) as happened_at,
    cast("name" as {{ dbt.type_string() }}) as event_name,
    cast({{ json_text(json_get('"data"', 'performed_by'), 'name') }} as {{ dbt.type_string() }}) as performed_by_name,
    cast({{ json_text(json_get('"data"', 'performed_by'), 'type') }} as {{ dbt.type_string() }}) as performed_by_type,
    cast({{ json_text(json_get('"data"', 'performed_by'), 'gsnumber') }} as bigint) as performed_by_gsnumber,
    cast({{ json_text('"data"', 'body') }} as {{ dbt.type_string() }}) as body,
    {{ to_json('"data"') }} as event_data,
    {{ to_json('extra') }} as extra
from latest
