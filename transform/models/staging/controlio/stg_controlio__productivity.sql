-- Controlio productivity report, one row per account, report window and user. The
-- document names no fields: the times are read from extra
-- (total_time, productive_time, idle_time, in seconds).
{{ stg_controlio_user_report('productivity', 'productivity_id') }}
