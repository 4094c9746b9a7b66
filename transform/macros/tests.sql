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
