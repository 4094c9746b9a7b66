{#- Staging shapes that several models share. -#}

{#- A Controlio per-user report (productivity, workload_by_users): one row per
    account, report window and user, the newest version of each. The document
    names no fields: the times are read from extra (total_time,
    productive_time, idle_time, in seconds). `id_column` names the row's key. -#}
{% macro stg_controlio_user_report(stream, id_column) -%}
with unioned as (
    {{ union_accounts('tap_controlio', stream, ensure={'extra': json_type(), 'department_id': 'bigint'}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'window_start', 'user_id'], 'window_end desc nulls last') }}
)

select
    {{ digest(['source_account', 'window_start', 'user_id']) }} as {{ id_column }},
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
{%- endmacro %}

{#- A BeyondTrust event stream (jump_items, team_activity,
    vault_account_activity): the newest version of each account's event, as
    the CTE `latest`. -#}
{% macro beyondtrust_latest_events(stream) -%}
with unioned as (
    {{ union_accounts('tap_beyondtrust', stream, ensure={'extra': json_type()}) }}
),

latest as (
    {{ latest_version('unioned', ['source_account', 'event_id'], '"timestamp" desc nulls last') }}
)
{%- endmacro %}

{#- The first columns of every BeyondTrust event: its key (`id_column`), the
    account, the event's id, time and type. -#}
{% macro beyondtrust_event_columns(id_column) -%}
    {{ digest(['source_account', 'event_id']) }} as {{ id_column }},
    source_account,
    cast(event_id as {{ dbt.type_string() }}) as event_id,
    cast("timestamp" as timestamp) as happened_at,
    cast(event_type as {{ dbt.type_string() }}) as event_type
{%- endmacro %}

{#- Who performed a BeyondTrust event: performed_by's name, type and id. -#}
{% macro beyondtrust_performed_by() -%}
    cast({{ json_text('performed_by', 'name') }} as {{ dbt.type_string() }}) as performed_by_name,
    cast({{ json_text('performed_by', 'type') }} as {{ dbt.type_string() }}) as performed_by_type,
    cast({{ json_text('performed_by', 'id') }} as bigint) as performed_by_id
{%- endmacro %}
