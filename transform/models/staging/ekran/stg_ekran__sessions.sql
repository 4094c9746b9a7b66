-- Ekran sessions, one row per account and sessionId (the latest version: an
-- open session read again once closed keeps only its closed version).
with unioned as (
    {{ union_accounts('tap_ekran', 'sessions', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'sessionid'], 'logoutdate desc nulls last, durationseconds desc nulls last') }}
)

select
    {{ digest(['source_account', 'sessionid']) }} as session_key,
    source_account,
    cast(sessionid as bigint) as session_id,
    cast(userid as bigint) as user_id,
    cast(username as {{ dbt.type_string() }}) as user_name,
    cast({{ json_text('extra', 'domainName') }} as {{ dbt.type_string() }}) as domain_name,
    cast(clientguid as {{ dbt.type_string() }}) as client_guid,
    cast(clientname as {{ dbt.type_string() }}) as client_name,
    cast(logindate as timestamp) as login_at,
    cast(logoutdate as timestamp) as logout_at,
    logoutdate is null as is_open,
    cast(durationseconds as double precision) as duration_seconds,
    cast(idletimeseconds as double precision) as idle_seconds,
    cast(productivitytimeseconds as double precision) as productive_seconds,
    cast(duration as {{ dbt.type_string() }}) as duration_text,
    cast(idletime as {{ dbt.type_string() }}) as idle_time_text,
    cast(productivitytime as {{ dbt.type_string() }}) as productivity_time_text,
    {{ to_json('extra') }} as extra
from latest
