-- Fudo PAM report rows (the report's CSV, one row per line, cells by header
-- in `columns`). Only rows of a report's latest version are kept: when a
-- report is regenerated, lines of its older version that the new one no
-- longer has are dropped here.
with unioned as (
    {{ union_accounts('tap_sessionreports', 'report_rows') }}
),

current_version as (
    select source_account, report_id, max(report_modified_at) as report_modified_at
    from unioned
    group by source_account, report_id
),

latest as (
    {{ latest_version('unioned', ['source_account', 'report_id', 'row_number'], 'report_modified_at desc nulls last') }}
)

select
    {{ digest(['latest.source_account', 'latest.report_id', 'latest.row_number']) }} as report_row_id,
    latest.source_account,
    cast(latest.report_id as {{ dbt.type_string() }}) as report_id,
    cast(latest.row_number as bigint) as row_number,
    cast(latest.report_modified_at as timestamp) as report_modified_at,
    {{ to_json('latest."columns"') }} as cells
from latest
inner join current_version
    on latest.source_account = current_version.source_account
    and latest.report_id = current_version.report_id
    and latest.report_modified_at = current_version.report_modified_at
