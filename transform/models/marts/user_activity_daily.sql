-- One row per user, day (UTC) and vendor: active, idle and productive seconds.
--   activtrak: working hours per user, summed over computers; active = activeTime.total,
--              idle = passiveTime.total, productive = activeTime.productive.
--   controlio: workload_by_users (active = total_time - idle_time, idle = idle_time) and
--              productivity (productive = productive_time), per report window (its first day).
--   ekran:     session time by login day: active = duration - idle, idle, productive.
{%- set text = dbt.type_string() %}

with activtrak as (
    select
        'activtrak' as vendor,
        source_account,
        'user' as identity_type,
        user_name as vendor_user_id,
        user_name,
        activity_date,
        sum(active_seconds) as active_seconds,
        sum(passive_seconds) as idle_seconds,
        sum(active_productive_seconds) as productive_seconds,
        cast(count(*) as bigint) as source_rows
    from {{ ref('stg_activtrak__working_hours_users') }}
    group by source_account, user_name, activity_date
),

controlio_workload as (
    select source_account, user_id, window_start_date as activity_date,
           sum(total_seconds - coalesce(idle_seconds, 0)) as active_seconds,
           sum(idle_seconds) as idle_seconds,
           count(*) as source_rows
    from {{ ref('stg_controlio__workload_by_users') }}
    group by source_account, user_id, window_start_date
),

controlio_productivity as (
    select source_account, user_id, window_start_date as activity_date,
           sum(productive_seconds) as productive_seconds,
           count(*) as source_rows
    from {{ ref('stg_controlio__productivity') }}
    group by source_account, user_id, window_start_date
),

controlio as (
    select
        'controlio' as vendor,
        coalesce(w.source_account, p.source_account) as source_account,
        'user' as identity_type,
        cast(coalesce(w.user_id, p.user_id) as {{ text }}) as vendor_user_id,
        users.user_name,
        coalesce(w.activity_date, p.activity_date) as activity_date,
        w.active_seconds,
        w.idle_seconds,
        p.productive_seconds,
        cast(coalesce(w.source_rows, 0) + coalesce(p.source_rows, 0) as bigint) as source_rows
    from controlio_workload as w
    full outer join controlio_productivity as p
        on p.source_account = w.source_account
        and p.user_id = w.user_id
        and p.activity_date = w.activity_date
    left join {{ ref('stg_controlio__users') }} as users
        on users.source_account = coalesce(w.source_account, p.source_account)
        and users.user_id = coalesce(w.user_id, p.user_id)
),

ekran as (
    select
        'ekran' as vendor,
        source_account,
        'user' as identity_type,
        cast(user_id as {{ text }}) as vendor_user_id,
        max(user_name) as user_name,
        cast(login_at as date) as activity_date,
        sum(duration_seconds - coalesce(idle_seconds, 0)) as active_seconds,
        sum(idle_seconds) as idle_seconds,
        sum(productive_seconds) as productive_seconds,
        cast(count(*) as bigint) as source_rows
    from {{ ref('stg_ekran__sessions') }}
    where duration_seconds is not null
    group by source_account, user_id, cast(login_at as date)
),

days as (
    select * from activtrak
    union all
    select * from controlio
    union all
    select * from ekran
)

select
    {{ digest(['days.vendor', 'days.source_account', 'days.vendor_user_id', 'days.activity_date']) }} as user_activity_id,
    days.activity_date,
    days.vendor,
    days.source_account,
    days.vendor_user_id,
    days.user_name,
    identities.person_id,
    cast(days.active_seconds as double precision) as active_seconds,
    cast(days.idle_seconds as double precision) as idle_seconds,
    cast(days.productive_seconds as double precision) as productive_seconds,
    days.source_rows
from days
left join {{ ref('person_identities') }} as identities
    on identities.vendor = days.vendor
    and identities.source_account = days.source_account
    and identities.identity_type = days.identity_type
    and identities.vendor_user_id = days.vendor_user_id
