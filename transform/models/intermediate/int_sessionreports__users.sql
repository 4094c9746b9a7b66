-- Fudo PAM users, from the rows of user reports (a "Login" column), one row
-- per account and login: the most recently modified report's row.
with rows_with_login as (
    select
        source_account,
        report_modified_at,
        report_id,
        row_number,
        {{ json_text('cells', 'Login') }} as login,
        {{ json_text('cells', 'Full name') }} as full_name,
        {{ json_text('cells', 'Email') }} as email,
        {{ json_text('cells', 'Role') }} as role
    from {{ ref('stg_sessionreports__report_rows') }}
),

latest as (
    {{ latest_version('rows_with_login', ['source_account', 'login'],
                      'report_modified_at desc nulls last, report_id desc, row_number') }}
)

select
    source_account,
    cast(login as {{ dbt.type_string() }}) as login,
    cast(full_name as {{ dbt.type_string() }}) as full_name,
    cast(email as {{ dbt.type_string() }}) as email,
    cast(role as {{ dbt.type_string() }}) as role
from latest
where login is not null and login <> ''
