-- user_activity_daily keeps every second of its sources: per vendor, its
-- active seconds equal the staging totals (within rounding).
with expected as (
    select 'activtrak' as vendor, sum(active_seconds) as seconds from {{ ref('stg_activtrak__working_hours_users') }}
    union all
    select 'controlio', sum(total_seconds - coalesce(idle_seconds, 0)) from {{ ref('stg_controlio__workload_by_users') }}
    union all
    select 'ekran', sum(duration_seconds - coalesce(idle_seconds, 0)) from {{ ref('stg_ekran__sessions') }} where duration_seconds is not null
),

modeled as (
    select vendor, sum(active_seconds) as seconds from {{ ref('user_activity_daily') }} group by vendor
)

select expected.vendor, expected.seconds as expected_seconds, modeled.seconds as modeled_seconds
from expected
left join modeled on modeled.vendor = expected.vendor
where abs(coalesce(expected.seconds, 0) - coalesce(modeled.seconds, 0)) > 0.01
