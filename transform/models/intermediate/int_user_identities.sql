-- Every user a vendor knows, one row per vendor, account, identity type and
-- the vendor's own id, with the login / email / domain forms used to match
-- people across vendors (see people.yml).
{%- set text = dbt.type_string() %}

with activtrak_names as (
    select source_account, user_name, login_domain, logged_at as seen_at
    from {{ ref('stg_activtrak__activity_log') }}
    union all
    select source_account, user_name, cast(null as {{ text }}), last_activity_at
    from {{ ref('stg_activtrak__working_hours_users') }}
),

activtrak as (
    {{ latest_version('activtrak_names', ['source_account', 'user_name'], 'login_domain is null, seen_at desc nulls last') }}
),

ekran as (
    {{ latest_version(ref('stg_ekran__sessions'), ['source_account', 'user_id'], 'login_at desc nulls last') }}
),

beyondtrust as (
    {{ latest_version(ref('int_beyondtrust__session_representatives'), ['source_account', 'rep_id'], 'started_at desc nulls last') }}
),

fudo_session_users as (
    select distinct sessions.source_account, sessions.user_name
    from {{ ref('int_sessionreports__session_rows') }} as sessions
    where sessions.user_name is not null
      and not exists (
        select 1 from {{ ref('int_sessionreports__users') }} as users
        where users.source_account = sessions.source_account and users.full_name = sessions.user_name
      )
),

identities as (
    select 'activtrak' as vendor, source_account, 'user' as identity_type,
           cast(user_name as {{ text }}) as vendor_user_id,
           user_name as login, cast(null as {{ text }}) as email, user_name as display_name,
           login_domain as domain_name
    from activtrak
    where user_name is not null

    union all
    select 'ekran', source_account, 'user', cast(user_id as {{ text }}),
           user_name, cast(null as {{ text }}), user_name, domain_name
    from ekran
    where user_id is not null

    union all
    select 'controlio', source_account, 'user', cast(user_id as {{ text }}),
           user_name, cast(null as {{ text }}), coalesce(friendly_name, user_name), domain_name
    from {{ ref('stg_controlio__users') }}

    union all
    select 'controlio', source_account, 'login', cast(login_id as {{ text }}),
           cast(null as {{ text }}), email,
           nullif(trim(coalesce(first_name, '') || ' ' || coalesce(last_name, '')), ''),
           cast(null as {{ text }})
    from {{ ref('stg_controlio__logins') }}

    union all
    select 'beyondtrust', source_account, 'representative', cast(rep_id as {{ text }}),
           username, cast(null as {{ text }}), display_name, cast(null as {{ text }})
    from beyondtrust
    where rep_id is not null

    union all
    select 'fudo', source_account, 'user', login,
           login, email, full_name, cast(null as {{ text }})
    from {{ ref('int_sessionreports__users') }}

    union all
    -- session-report users no user report names: known by name only
    select 'fudo', source_account, 'name', user_name,
           cast(null as {{ text }}), cast(null as {{ text }}), user_name, cast(null as {{ text }})
    from fudo_session_users
)

select
    {{ digest(['vendor', 'source_account', 'identity_type', 'vendor_user_id']) }} as identity_id,
    vendor,
    source_account,
    identity_type,
    vendor_user_id,
    login,
    email,
    display_name,
    domain_name,
    {{ normalise_login('login') }} as normalised_login,
    {{ normalise_email('email') }} as normalised_email,
    {{ normalise_login('email') }} as email_local_part
from identities
