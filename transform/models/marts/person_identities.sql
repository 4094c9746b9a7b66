-- Every vendor identity with the person it belongs to, and the rule that
-- matched it (override, login, email, unmatched). See people.yml.
{%- set text = dbt.type_string() %}

with identities as (
    select * from {{ ref('int_user_identities') }}
),

overrides as (
    select
        lower(trim(vendor)) as vendor,
        nullif(trim(source_account), '') as source_account,
        nullif(trim(identity_type), '') as identity_type,
        trim(vendor_user_id) as vendor_user_id,
        trim(person_key) as person_key
    from {{ ref('person_overrides') }}
),

with_override as (
    select
        identities.*,
        overrides.person_key as override_key,
        row_number() over (
            partition by identities.identity_id
            order by overrides.source_account is null, overrides.identity_type is null, overrides.person_key
        ) as override_rank
    from identities
    left join overrides
        on overrides.vendor = identities.vendor
        and overrides.vendor_user_id = identities.vendor_user_id
        and (overrides.source_account is null or overrides.source_account = identities.source_account)
        and (overrides.identity_type is null or overrides.identity_type = identities.identity_type)
),

keyed as (
    select
        *,
        case
            when override_key is not null then 'override'
            when normalised_login is not null then 'login'
            when email_local_part is not null then 'email'
            else 'unmatched'
        end as match_rule,
        coalesce(
            override_key,
            normalised_login,
            email_local_part,
            vendor || ':' || source_account || ':' || identity_type || ':' || vendor_user_id
        ) as person_key
    from with_override
    where override_rank = 1
)

select
    identity_id,
    {{ digest(['person_key']) }} as person_id,
    person_key,
    match_rule,
    vendor,
    source_account,
    identity_type,
    vendor_user_id,
    login,
    email,
    display_name,
    domain_name,
    normalised_login,
    normalised_email
from keyed
