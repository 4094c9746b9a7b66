-- Every Session ID of the current Fudo report rows appears exactly once in
-- privileged_sessions (however many reports list it).
{% set raw %}
    select distinct source_account, {{ json_text('cells', 'Session ID') }} as session_id
    from {{ ref('stg_sessionreports__report_rows') }}
    where {{ json_text('cells', 'Session ID') }} <> ''
{% endset %}
{{ privileged_sessions_reconcile('fudo', raw) }}
