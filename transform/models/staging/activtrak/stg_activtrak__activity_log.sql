-- ActivTrak activity log: one row per log entry (logId) and account.
with unioned as (
    {{ union_accounts('tap_activtrak', 'activity_log', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'logid'], '"date" desc nulls last') }}
)

select
    {{ digest(['source_account', 'logid']) }} as activity_log_id,
    source_account,
    cast(logid as bigint) as log_id,
    cast("date" as timestamp) as logged_at,
    cast("user" as {{ dbt.type_string() }}) as user_name,
    cast(logindomain as {{ dbt.type_string() }}) as login_domain,
    cast(primarydomain as {{ dbt.type_string() }}) as primary_domain,
    cast(computerid as bigint) as computer_id,
    cast(computer as {{ dbt.type_string() }}) as computer_name,
    cast(applicationid as bigint) as application_id,
    cast(websiteid as bigint) as website_id,
    cast(executable as {{ dbt.type_string() }}) as executable,
    cast(url as {{ dbt.type_string() }}) as url,
    cast(description as {{ dbt.type_string() }}) as description,
    cast(duration as double precision) as duration_seconds,
    cast(productivity as integer) as productivity,
    cast("session" as bigint) as session_number,
    cast(privateip as {{ dbt.type_string() }}) as private_ip,
    cast(publicip as {{ dbt.type_string() }}) as public_ip,
    cast(emailalarm as boolean) as is_email_alarm,
    cast(popupalarm as boolean) as is_popup_alarm,
    cast(externalnotificationalarm as boolean) as is_external_notification_alarm,
    cast(terminate as boolean) as is_terminated,
    {{ to_json('extra') }} as extra
from latest
