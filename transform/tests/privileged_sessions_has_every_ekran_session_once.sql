-- Every Ekran session of the raw tables (every account) appears exactly once
-- in privileged_sessions, and nothing else does.
with raw as (
    select distinct source_account, cast(cast(sessionid as bigint) as {{ dbt.type_string() }}) as session_id
    from ({{ union_accounts('tap_ekran', 'sessions') }}) as unioned
),

modeled as (
    select source_account, session_id, count(*) as times
    from {{ ref('privileged_sessions') }}
    where vendor = 'ekran'
    group by source_account, session_id
)

select coalesce(raw.source_account, modeled.source_account) as source_account,
       coalesce(raw.session_id, modeled.session_id) as session_id,
       coalesce(modeled.times, 0) as times
from raw
full outer join modeled
    on modeled.source_account = raw.source_account and modeled.session_id = raw.session_id
where raw.session_id is null or modeled.times is null or modeled.times <> 1
