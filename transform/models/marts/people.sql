-- One row per person: identities of every vendor matched on normalised login,
-- email and domain\user forms (rules in people.yml; seeds/person_overrides.csv
-- overrides them). Unmatched identities are people of their own.
with identities as (
    select * from {{ ref('person_identities') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by person_id
            order by display_name is null, email is null, vendor, source_account, vendor_user_id
        ) as name_rank
    from identities
)

select
    person_id,
    min(person_key) as person_key,
    max(case when name_rank = 1 then display_name end) as display_name,
    min(normalised_login) as login,
    min(normalised_email) as email,
    count(distinct vendor) as vendor_count,
    count(*) as identity_count,
    count(distinct vendor) > 1 as is_matched_across_vendors,
    max(case when match_rule = 'override' then 1 else 0 end) = 1 as is_overridden,
    {%- for vendor in ['activtrak', 'beyondtrust', 'controlio', 'ekran', 'fudo'] %}
    string_agg(case when vendor = '{{ vendor }}' then vendor_user_id end, ', ' order by vendor_user_id) as {{ vendor }}_user_ids,
    {%- endfor %}
    string_agg(distinct vendor, ', ' order by vendor) as vendors
from ranked
group by person_id
