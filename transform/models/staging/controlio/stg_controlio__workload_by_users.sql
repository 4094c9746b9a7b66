-- Controlio workload_by_users report, one row per account, report window and user. The
-- document names no fields: the times are read from extra
-- (total_time, productive_time, idle_time, in seconds).
{{ stg_controlio_user_report('workload_by_users', 'workload_by_users_id') }}
