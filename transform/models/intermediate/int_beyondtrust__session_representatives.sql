-- One row per BeyondTrust support session and representative in it (from
-- the session's representatives list): who a session-local gsnumber was.
with elements as (
    select
        source_account,
        session_id,
        started_at,
        {{ json_array_elements('representatives') }} as rep
    from {{ ref('stg_beyondtrust__support_sessions') }}
)

select
    source_account,
    session_id,
    started_at,
    cast({{ json_text('rep', 'id') }} as bigint) as rep_id,
    cast({{ json_text('rep', 'gsnumber') }} as bigint) as gsnumber,
    cast({{ json_text('rep', 'username') }} as {{ dbt.type_string() }}) as username,
    cast({{ json_text('rep', 'display_name') }} as {{ dbt.type_string() }}) as display_name,
    cast({{ try_number(json_text('rep', 'seconds_involved')) }} as double precision) as seconds_involved
from elements
