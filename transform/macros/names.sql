{#- How a user name is normalised for matching across vendors (documented in
    models/marts/people.yml): trimmed, lower case, a DOMAIN\ prefix and an
    @domain suffix removed. `user_domain` gives the domain part of either form. -#}
{% macro normalise_login(expr) -%}
nullif(lower(trim(
    case
        when strpos({{ expr }}, '\') > 0 then split_part({{ expr }}, '\', 2)
        when strpos({{ expr }}, '@') > 0 then split_part({{ expr }}, '@', 1)
        else {{ expr }}
    end
)), '')
{%- endmacro %}

{% macro normalise_email(expr) -%}
case when strpos({{ expr }}, '@') > 1 then lower(trim({{ expr }})) end
{%- endmacro %}

{% macro normalise_text(expr) -%}
nullif(lower(trim({{ expr }})), '')
{%- endmacro %}
