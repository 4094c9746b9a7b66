-- BeyondTrust support sessions, one row per account and lsid (the latest
-- version: a running session read again after its end keeps its ended row).
with unioned as (
    {{ union_accounts('tap_beyondtrust', 'support_sessions', ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'lsid'], 'end_time desc nulls last, lseq desc nulls last') }}
)

select
    {{ digest(['source_account', 'lsid']) }} as support_session_key,
    source_account,
    cast(lsid as {{ dbt.type_string() }}) as session_id,
    cast(lseq as bigint) as session_sequence,
    cast(session_type as {{ dbt.type_string() }}) as session_type,
    cast(start_time as timestamp) as started_at,
    cast(end_time as timestamp) as ended_at,
    end_time is null as is_open,
    cast(duration_seconds as bigint) as duration_seconds,
    cast(duration as {{ dbt.type_string() }}) as duration_text,
    cast({{ json_text('primary_rep', 'id') }} as bigint) as primary_rep_id,
    cast({{ json_text('primary_rep', 'name') }} as {{ dbt.type_string() }}) as primary_rep_name,
    cast({{ json_text('primary_team', 'id') }} as bigint) as primary_team_id,
    cast({{ json_text('primary_team', 'name') }} as {{ dbt.type_string() }}) as primary_team_name,
    cast({{ json_text('primary_customer', 'name') }} as {{ dbt.type_string() }}) as primary_customer_name,
    cast({{ json_first_text('customers', 'hostname') }} as {{ dbt.type_string() }}) as customer_hostname,
    cast({{ json_text('jumpoint', 'name') }} as {{ dbt.type_string() }}) as jumpoint_name,
    cast({{ json_text('public_site', 'name') }} as {{ dbt.type_string() }}) as public_site_name,
    cast(external_key as {{ dbt.type_string() }}) as external_key,
    cast(file_transfer_count as bigint) as file_transfer_count,
    cast(file_move_count as bigint) as file_move_count,
    cast(file_delete_count as bigint) as file_delete_count,
    cast(session_recording_view_url as {{ dbt.type_string() }}) as recording_view_url,
    cast(session_recording_download_url as {{ dbt.type_string() }}) as recording_download_url,
    cast(session_chat_view_url as {{ dbt.type_string() }}) as chat_view_url,
    {{ to_json('representatives') }} as representatives,
    {{ to_json('customers') }} as customers,
    {{ to_json('custom_attributes') }} as custom_attributes,
    {{ to_json('extra') }} as extra
from latest
