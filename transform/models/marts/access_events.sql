-- Audit-like events of every vendor in one shape: who (actor) did what
-- (action) to what (object), when (happened_at, UTC).
{%- set text = dbt.type_string() %}

with gsnumbers as (
    -- a team event names its representative by gsnumber: the rep id where it is unambiguous
    select source_account, gsnumber, min(rep_id) as rep_id
    from {{ ref('int_beyondtrust__session_representatives') }}
    group by source_account, gsnumber
    having count(distinct rep_id) = 1
),

events as (
    select
        'controlio' as vendor,
        source_account,
        'audit_log' as source_stream,
        row_key as vendor_event_id,
        happened_at,
        email as actor,
        'login' as actor_type,
        'login' as actor_identity_type,
        cast(login_id as {{ text }}) as actor_vendor_user_id,
        action,
        object_type,
        cast(object_id as {{ text }}) as object,
        extra as details
    from {{ ref('stg_controlio__audit_log') }}

    union all
    select
        'beyondtrust', team.source_account, 'team_activity', team.event_id, team.happened_at,
        team.performed_by_name, team.performed_by_type, 'representative',
        cast(coalesce(team.performed_by_id, gsnumbers.rep_id) as {{ text }}),
        team.event_type, 'team', team.team_name, team.event_data
    from {{ ref('stg_beyondtrust__team_activity') }} as team
    left join gsnumbers
        on gsnumbers.source_account = team.source_account
        and gsnumbers.gsnumber = team.performed_by_gsnumber

    union all
    select
        'beyondtrust', source_account, 'vault_account_activity', event_id, happened_at,
        performed_by_name, performed_by_type, 'representative',
        case when performed_by_type = 'user' then cast(performed_by_id as {{ text }}) end,
        event_type, 'vault_account', coalesce(account_name, cast(account_id as {{ text }})),
        {{ to_json('detail') }}
    from {{ ref('stg_beyondtrust__vault_account_activity') }}

    union all
    select
        'beyondtrust', source_account, 'jump_items', event_id, happened_at,
        performed_by_name, performed_by_type, 'representative',
        case when performed_by_type = 'user' then cast(performed_by_id as {{ text }}) end,
        event_type, 'jump_item', coalesce(jump_item_name, cast(jump_item_id as {{ text }})),
        {{ to_json('detail') }}
    from {{ ref('stg_beyondtrust__jump_items') }}

    union all
    select
        'beyondtrust', archive.source_account, 'archive_session_events',
        cast(archive.archive_date as {{ text }}) || '/' || cast(archive.archive_index as {{ text }}) || '/' || cast(archive.line as {{ text }}),
        archive.happened_at,
        coalesce(archive.performed_by_name, reps.display_name,
                 archive.performed_by_type || ' ' || cast(archive.performed_by_gsnumber as {{ text }})),
        archive.performed_by_type, 'representative',
        cast(reps.rep_id as {{ text }}),
        archive.event_name, 'support_session', archive.session_id, archive.event_data
    from {{ ref('stg_beyondtrust__archive_session_events') }} as archive
    left join {{ ref('int_beyondtrust__session_representatives') }} as reps
        on reps.source_account = archive.source_account
        and reps.session_id = archive.session_id
        and reps.gsnumber = archive.performed_by_gsnumber
        and archive.performed_by_type = 'representative'
)

select
    {{ digest(['events.vendor', 'events.source_account', 'events.source_stream', 'events.vendor_event_id']) }} as access_event_id,
    events.happened_at,
    events.vendor,
    events.source_account,
    events.source_stream,
    events.vendor_event_id,
    events.actor,
    events.actor_type,
    identities.person_id as actor_person_id,
    events.action,
    events.object_type,
    events.object,
    events.details
from events
left join {{ ref('person_identities') }} as identities
    on identities.vendor = events.vendor
    and identities.source_account = events.source_account
    and identities.identity_type = events.actor_identity_type
    and identities.vendor_user_id = events.actor_vendor_user_id
