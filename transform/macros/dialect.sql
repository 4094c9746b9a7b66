{#- The few places where DuckDB and PostgreSQL differ. Every model writes
    portable SQL and calls these for the rest (adapter.dispatch picks
    duckdb__x on DuckDB, default__x elsewhere, PostgreSQL included). -#}

{#- The JSON type of the warehouse. -#}
{% macro json_type() %}{{ return(adapter.dispatch('json_type')()) }}{% endmacro %}
{% macro default__json_type() %}jsonb{% endmacro %}
{% macro duckdb__json_type() %}json{% endmacro %}

{#- Any value (JSON, an array, text holding JSON) as the JSON type. -#}
{% macro to_json(expr) %}{{ return(adapter.dispatch('to_json')(expr)) }}{% endmacro %}
{% macro default__to_json(expr) %}to_jsonb({{ expr }}){% endmacro %}
{% macro duckdb__to_json(expr) %}to_json({{ expr }}){% endmacro %}

{#- Text of a key of a JSON object (null when missing); keys may hold spaces. -#}
{% macro json_text(expr, key) %}{{ return(adapter.dispatch('json_text')(expr, key)) }}{% endmacro %}
{% macro default__json_text(expr, key) %}({{ expr }} ->> '{{ key }}'){% endmacro %}
{% macro duckdb__json_text(expr, key) %}json_extract_string({{ expr }}, '{{ "$." ~ tojson(key) }}'){% endmacro %}

{#- A JSON object's key as JSON. -#}
{% macro json_get(expr, key) %}{{ return(adapter.dispatch('json_get')(expr, key)) }}{% endmacro %}
{% macro default__json_get(expr, key) %}({{ expr }} -> '{{ key }}'){% endmacro %}
{% macro duckdb__json_get(expr, key) %}json_extract({{ expr }}, '{{ "$." ~ tojson(key) }}'){% endmacro %}

{#- One row per element of a JSON array (in a select list); target-postgres
    loads arrays of objects as jsonb[], hence to_jsonb first. -#}
{% macro json_array_elements(expr) %}{{ return(adapter.dispatch('json_array_elements')(expr)) }}{% endmacro %}
{% macro default__json_array_elements(expr) %}jsonb_array_elements(case when jsonb_typeof(to_jsonb({{ expr }})) = 'array' then to_jsonb({{ expr }}) else '[]'::jsonb end){% endmacro %}
{% macro duckdb__json_array_elements(expr) %}unnest(case when json_type({{ expr }}) = 'ARRAY' then from_json({{ expr }}, '["json"]') else [] end){% endmacro %}

{#- Seconds from timestamp a to timestamp b (fractional). -#}
{% macro seconds_between(a, b) %}{{ return(adapter.dispatch('seconds_between')(a, b)) }}{% endmacro %}
{% macro default__seconds_between(a, b) %}cast(extract(epoch from ({{ b }} - {{ a }})) as double precision){% endmacro %}
{% macro duckdb__seconds_between(a, b) %}(date_diff('microsecond', {{ a }}, {{ b }}) / 1000000.0){% endmacro %}

{#- A timestamp plus some seconds. -#}
{% macro add_seconds(ts, seconds) %}{{ return(adapter.dispatch('add_seconds')(ts, seconds)) }}{% endmacro %}
{% macro default__add_seconds(ts, seconds) %}({{ ts }} + make_interval(secs => {{ seconds }})){% endmacro %}
{% macro duckdb__add_seconds(ts, seconds) %}({{ ts }} + to_microseconds(cast(round(cast({{ seconds }} as double) * 1000000) as bigint))){% endmacro %}

{#- Text to timestamp, null when it does not parse (vendors' report cells). -#}
{% macro try_timestamp(expr) %}{{ return(adapter.dispatch('try_timestamp')(expr)) }}{% endmacro %}
{% macro default__try_timestamp(expr) %}(case when {{ expr }} ~ '^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$' then cast({{ expr }} as timestamp) end){% endmacro %}
{% macro duckdb__try_timestamp(expr) %}try_cast({{ expr }} as timestamp){% endmacro %}

{#- Text to a number, null when it does not parse. -#}
{% macro try_number(expr) %}{{ return(adapter.dispatch('try_number')(expr)) }}{% endmacro %}
{% macro default__try_number(expr) %}(case when trim({{ expr }}) ~ '^-?\d+(\.\d+)?$' then cast(trim({{ expr }}) as double precision) end){% endmacro %}
{% macro duckdb__try_number(expr) %}try_cast(trim({{ expr }}) as double){% endmacro %}

{#- A digest of the given expressions as text (surrogate keys). -#}
{% macro digest(exprs) %}md5({% for e in exprs %}coalesce(cast({{ e }} as {{ dbt.type_string() }}), '') {%- if not loop.last %} || '|' || {% endif %}{% endfor %}){% endmacro %}

{#- Text of a key of a JSON array's first element. -#}
{% macro json_first_text(expr, key) %}{{ return(adapter.dispatch('json_first_text')(expr, key)) }}{% endmacro %}
{% macro default__json_first_text(expr, key) %}(case when jsonb_typeof(to_jsonb({{ expr }})) = 'array' then to_jsonb({{ expr }}) -> 0 ->> '{{ key }}' end){% endmacro %}
{% macro duckdb__json_first_text(expr, key) %}json_extract_string({{ expr }}, '{{ "$[0]." ~ tojson(key) }}'){% endmacro %}
