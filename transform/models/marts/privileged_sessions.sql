-- One row per remote or privileged session: BeyondTrust support sessions,
-- Ekran sessions and Fudo PAM session-report rows. ended_at is null while a
-- session is open; a duration that would be negative (clock skew) is null.
{%- set text = dbt.type_string() %}

with beyondtrust as (
    select
        'beyondtrust' as vendor,
        sessions.source_account,
        sessions.session_id,
        'representative' as identity_type,
        cast(sessions.primary_rep_id as {{ text }}) as vendor_user_id,
        coalesce(reps.username, sessions.primary_rep_name) as user_name,
        coalesce(sessions.customer_hostname, sessions.jumpoint_name, sessions.primary_customer_name) as target,
        case when sessions.customer_hostname is not null then 'endpoint' when sessions.jumpoint_name is not null then 'jumpoint' else 'customer' end as target_type,
        sessions.session_type as protocol,
        sessions.started_at,
        sessions.ended_at,
        cast(coalesce(sessions.duration_seconds,
                      {{ seconds_between('sessions.started_at', 'sessions.ended_at') }}) as double precision) as raw_duration_seconds,
        sessions.recording_view_url as link_url
    from {{ ref('stg_beyondtrust__support_sessions') }} as sessions
    left join {{ ref('int_beyondtrust__session_representatives') }} as reps
        on reps.source_account = sessions.source_account
        and reps.session_id = sessions.session_id
        and reps.rep_id = sessions.primary_rep_id
),

ekran as (
    select
        'ekran',
        source_account,
        cast(session_id as {{ text }}),
        'user',
        cast(user_id as {{ text }}),
        case when domain_name is not null then domain_name || '\' || user_name else user_name end,
        client_name,
        'endpoint',
        cast(null as {{ text }}),
        login_at,
        logout_at,
        cast(coalesce(duration_seconds, {{ seconds_between('login_at', 'logout_at') }}) as double precision),
        cast(null as {{ text }})
    from {{ ref('stg_ekran__sessions') }}
),

fudo as (
    select
        'fudo',
        sessions.source_account,
        sessions.session_id,
        coalesce(users.identity_type, 'name'),
        coalesce(users.vendor_user_id, sessions.user_name),
        sessions.user_name,
        sessions.server,
        'server',
        sessions.protocol,
        sessions.started_at,
        sessions.ended_at,
        cast(coalesce(sessions.duration_seconds, {{ seconds_between('sessions.started_at', 'sessions.ended_at') }}) as double precision),
        cast(null as {{ text }})
    from {{ ref('int_sessionreports__session_rows') }} as sessions
    left join (
        -- a session row names its user by full name: the user report's login for it
        select source_account, display_name, min(vendor_user_id) as vendor_user_id, min(identity_type) as identity_type
        from {{ ref('int_user_identities') }}
        where vendor = 'fudo' and identity_type = 'user'
        group by source_account, display_name
    ) as users
        on users.source_account = sessions.source_account
        and users.display_name = sessions.user_name
),

sessions as (
    select * from beyondtrust
    union all
    select * from ekran
    union all
    select * from fudo
)

select
    {{ digest(['sessions.vendor', 'sessions.source_account', 'sessions.session_id']) }} as privileged_session_id,
    sessions.vendor,
    sessions.source_account,
    sessions.session_id,
    sessions.vendor_user_id,
    sessions.user_name,
    identities.person_id,
    sessions.target,
    sessions.target_type,
    sessions.protocol,
    sessions.started_at,
    sessions.ended_at,
    sessions.ended_at is null as is_open,
    case when sessions.raw_duration_seconds >= 0 then sessions.raw_duration_seconds end as duration_seconds,
    sessions.link_url
from sessions
left join {{ ref('person_identities') }} as identities
    on identities.vendor = sessions.vendor
    and identities.source_account = sessions.source_account
    and identities.identity_type = sessions.identity_type
    and identities.vendor_user_id = sessions.vendor_user_id
