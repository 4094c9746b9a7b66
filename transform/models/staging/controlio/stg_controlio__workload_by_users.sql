-- Controlio workload_by_users report, one row per account, report window and user. The
-- document names no fields: the times are read from extra
-- (total_time, productive_time, idle_time, in seconds).
with unioned as (
    {{ union_accounts('tap_controlio', 'workload_by_users', ensure={'extra': json_type(), 'department_id': 'bigint'}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'window_start', 'user_id'], 'window_end desc nulls last') }}
)

select
    {{ digest(['source_account', 'window_start', 'user_id']) }} as workload_by_users_id,
    source_account,
    cast(window_start as date) as window_start_date,
    cast(window_end as date) as window_end_date,
    cast(user_id as bigint) as user_id,
    cast(department_id as bigint) as department_id,
    {{ try_number(json_text('extra', 'total_time')) }} as total_seconds,
    {{ try_number(json_text('extra', 'productive_time')) }} as productive_seconds,
    {{ try_number(json_text('extra', 'idle_time')) }} as idle_seconds,
    {{ to_json('extra') }} as extra
from latest
