-- Fudo PAM session-report rows (every report whose rows carry a "Session ID"
-- column: session summary, sessions by server, user activity ...), one row
-- per account and session: the row of the most recently modified report.
with rows_with_session as (
    select
        report_rows.source_account,
        report_rows.report_id,
        report_rows.row_number,
        report_rows.report_modified_at,
        defined_reports.report_type,
        report_rows.cells,
        {{ json_text('report_rows.cells', 'Session ID') }} as session_id
    from {{ ref('stg_sessionreports__report_rows') }} as report_rows
    left join {{ ref('stg_sessionreports__reports') }} as reports
        on reports.source_account = report_rows.source_account
        and reports.report_id = report_rows.report_id
    left join {{ ref('stg_sessionreports__defined_reports') }} as defined_reports
        on defined_reports.source_account = reports.source_account
        and defined_reports.defined_report_id = reports.defined_report_id
),

latest as (
    {{ latest_version('rows_with_session', ['source_account', 'session_id'],
                      'report_modified_at desc nulls last, report_id desc, row_number') }}
)

select
    source_account,
    cast(session_id as {{ dbt.type_string() }}) as session_id,
    report_id,
    report_type,
    report_modified_at,
    cast({{ json_text('cells', 'User') }} as {{ dbt.type_string() }}) as user_name,
    cast({{ json_text('cells', 'Server') }} as {{ dbt.type_string() }}) as server,
    cast({{ json_text('cells', 'Protocol') }} as {{ dbt.type_string() }}) as protocol,
    {{ try_timestamp(json_text('cells', 'Started')) }} as started_at,
    {{ try_timestamp(json_text('cells', 'Finished')) }} as ended_at,
    {{ try_number(json_text('cells', 'Duration [s]')) }} as duration_seconds,
    cast({{ json_text('cells', 'Description') }} as {{ dbt.type_string() }}) as description,
    cells
from latest
where session_id is not null and session_id <> ''
