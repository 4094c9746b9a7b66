{#- Every account's copy of one raw table, unioned.

    The schemas come from var('source_schemas')[source_name] (one per account:
    an inherited Meltano plugin loads into its own load_schema); schemas that
    are not in the warehouse are skipped. Each row gets `source_account`, the
    schema it came from. Columns are unioned by name, case-insensitively
    (target-duckdb lowercases names, target-postgres keeps the tap's case) and
    named in lower case; a column one account lacks is null there, and
    `ensure` ({name: type}) adds columns that no account has yet (a field a tap
    version adds later), so that staging models can always name them.
    The loaders' own _sdc_ columns are left out. -#}
{% macro union_accounts(source_name, table_name, ensure={}) -%}
    {%- set first = source(source_name, table_name) -%}
    {%- if not execute -%}
        select * from {{ first }}
    {%- else -%}
        {%- set found = [] -%}
        {%- for schema in var('source_schemas')[source_name] -%}
            {%- set relation = adapter.get_relation(database=first.database, schema=schema, identifier=table_name) -%}
            {%- if relation is not none -%}{%- do found.append((schema, relation)) -%}{%- endif -%}
        {%- endfor -%}
        {%- if found | length == 0 -%}
            {{ exceptions.raise_compiler_error(
                "no table " ~ table_name ~ " in any schema of var source_schemas." ~ source_name
                ~ " " ~ var('source_schemas')[source_name] | string ~ ": run its tap first, or set the var") }}
        {%- endif -%}
        {%- set names = [] -%}
        {%- set types = {} -%}
        {%- set per_relation = [] -%}
        {%- for schema, relation in found -%}
            {%- set columns = {} -%}
            {%- for column in adapter.get_columns_in_relation(relation) -%}
                {%- set key = column.name | lower -%}
                {%- if not key.startswith('_sdc_') -%}
                    {%- do columns.update({key: column.name}) -%}
                    {%- if key not in names -%}
                        {%- do names.append(key) -%}
                        {%- do types.update({key: column.data_type}) -%}
                    {%- endif -%}
                {%- endif -%}
            {%- endfor -%}
            {%- do per_relation.append((schema, relation, columns)) -%}
        {%- endfor -%}
        {%- for key, kind in ensure.items() -%}
            {%- if key not in names -%}
                {%- do names.append(key) -%}
                {%- do types.update({key: kind}) -%}
            {%- endif -%}
        {%- endfor -%}
        {%- for schema, relation, columns in per_relation %}
        select
            cast('{{ schema }}' as {{ dbt.type_string() }}) as source_account
            {%- for key in names %},
            {% if key in columns -%}
            {{ adapter.quote(columns[key]) }}
            {%- else -%}
            cast(null as {{ types[key] }})
            {%- endif %} as {{ adapter.quote(key) }}
            {%- endfor %}
        from {{ relation }}
        {% if not loop.last %}union all{% endif %}
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}

{#- Keep the latest version of each key: a lookback re-read or an
    append-only loader never doubles a row. -#}
{% macro latest_version(relation, key_columns, order_by) -%}
select * from (
    select
        *,
        row_number() over (
            partition by {{ key_columns | join(', ') }}
            order by {{ order_by }}
        ) as _version_rank
    from {{ relation }}
) as ranked
where _version_rank = 1
{%- endmacro %}
