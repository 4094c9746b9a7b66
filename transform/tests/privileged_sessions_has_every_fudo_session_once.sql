-- Every Session ID of the current Fudo report rows appears exactly once in
-- privileged_sessions (however many reports list it).
with raw as (
    select distinct source_account, {{ json_text('cells', 'Session ID') }} as session_id
    from {{ ref('stg_sessionreports__report_rows') }}
    where {{ json_text('cells', 'Session ID') }} <> ''
),

modeled as (
    select source_account, session_id, count(*) as times
    from {{ ref('privileged_sessions') }}
    where vendor = 'fudo'
    group by source_account, session_id
)

select coalesce(raw.source_account, modeled.source_account) as source_account,
       coalesce(raw.session_id, modeled.session_id) as session_id,
       coalesce(modeled.times, 0) as times
from raw
full outer join modeled
    on modeled.source_account = raw.source_account and modeled.session_id = raw.session_id
where raw.session_id is null or modeled.times is null or modeled.times <> 1
