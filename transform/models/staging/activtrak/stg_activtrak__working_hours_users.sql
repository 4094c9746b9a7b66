-- ActivTrak working hours, one row per account, day, computer and user.
-- activeTime/passiveTime are objects {productive, unproductive, undefined, total} in seconds.
-- `date` is the day's midnight on the server's clock (the tap's timezone
-- setting), written in UTC: the day is the one whose midnight is nearest to
-- it (exact for every offset from -11:59 to +12:00, UTC included).
with unioned as (
    {{ union_accounts('tap_activtrak', 'working_hours_users', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', '"date"', 'computerid', 'users_key'], 'lastactivitylog desc nulls last, lastactivity desc nulls last') }}
)

select
    {{ digest(['source_account', '"date"', 'computerid', 'users_key']) }} as working_hours_id,
    source_account,
    cast({{ add_seconds('"date"', 43200) }} as date) as activity_date,
    cast(computerid as bigint) as computer_id,
    cast(users_key as {{ dbt.type_string() }}) as user_name,
    cast(firstactivity as timestamp) as first_activity_at,
    cast(lastactivity as timestamp) as last_activity_at,
    cast(lastactivitylog as timestamp) as last_activity_log_at,
    cast(totaltime as double precision) as total_seconds,
    cast({{ json_text('activetime', 'total') }} as double precision) as active_seconds,
    cast({{ json_text('activetime', 'productive') }} as double precision) as active_productive_seconds,
    cast({{ json_text('passivetime', 'total') }} as double precision) as passive_seconds,
    cast({{ json_text('passivetime', 'productive') }} as double precision) as passive_productive_seconds,
    {{ to_json('activetime') }} as active_time,
    {{ to_json('passivetime') }} as passive_time,
    {{ to_json('"groups"') }} as groups,
    {{ to_json('extra') }} as extra
from latest
