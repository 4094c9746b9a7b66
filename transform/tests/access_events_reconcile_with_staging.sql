-- access_events holds exactly the rows of its five staging tables.
with expected as (
    select 'audit_log' as source_stream, count(*) as n from {{ ref('stg_controlio__audit_log') }}
    union all select 'team_activity', count(*) from {{ ref('stg_beyondtrust__team_activity') }}
    union all select 'vault_account_activity', count(*) from {{ ref('stg_beyondtrust__vault_account_activity') }}
    union all select 'jump_items', count(*) from {{ ref('stg_beyondtrust__jump_items') }}
    union all select 'archive_session_events', count(*) from {{ ref('stg_beyondtrust__archive_session_events') }}
),

modeled as (
    select source_stream, count(*) as n from {{ ref('access_events') }} group by source_stream
)

select expected.source_stream, expected.n as expected_rows, coalesce(modeled.n, 0) as modeled_rows
from expected
left join modeled on modeled.source_stream = expected.source_stream
where expected.n <> coalesce(modeled.n, 0)
