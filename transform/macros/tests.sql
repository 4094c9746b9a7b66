{#- Generic tests the project uses (no package hub needed). -#}

{#- The combination of columns is unique (a compound key). -#}
{% test unique_combination(model, column_names) %}
select {{ column_names | join(', ') }}, count(*) as rows_with_key
from {{ model }}
group by {{ column_names | join(', ') }}
having count(*) > 1
{% endtest %}

{#- No value below the minimum (nulls pass). -#}
{% test not_negative(model, column_name) %}
select {{ column_name }} from {{ model }} where {{ column_name }} < 0
{% endtest %}

{#- Rows of `model` that `condition` rejects. -#}
{% test expression_is_true(model, expression) %}
select * from {{ model }} where not ({{ expression }})
{% endtest %}

{#- Rows where privileged_sessions and a vendor's raw sessions disagree: a raw
    session (`raw`: a query of distinct source_account, session_id) missing
    from the model or there more than once, or a modeled session of `vendor`
    that is not raw. Singular tests of transform/tests/ return it. -#}
{% macro privileged_sessions_reconcile(vendor, raw) -%}
with raw as (
    {{ raw }}
),

modeled as (
    select source_account, session_id, count(*) as times
    from {{ ref('privileged_sessions') }}
    where vendor = '{{ vendor }}'
    group by source_account, session_id
)

select coalesce(raw.source_account, modeled.source_account) as source_account,
       coalesce(raw.session_id, modeled.session_id) as session_id,
       coalesce(modeled.times, 0) as times
from raw
full outer join modeled
    on modeled.source_account = raw.source_account and modeled.session_id = raw.session_id
where raw.session_id is null or modeled.times is null or modeled.times <> 1
{%- endmacro %}
