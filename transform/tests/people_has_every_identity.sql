-- Every vendor identity belongs to exactly one person, and people's identity
-- counts add up to the identities.
select 'identities without a person' as problem, count(*) as n
from {{ ref('person_identities') }} as identities
left join {{ ref('people') }} as people on people.person_id = identities.person_id
where people.person_id is null
having count(*) > 0

union all

select 'identity counts differ', abs(
    (select count(*) from {{ ref('int_user_identities') }})
    - (select sum(identity_count) from {{ ref('people') }}))
where (select count(*) from {{ ref('int_user_identities') }})
      <> (select coalesce(sum(identity_count), 0) from {{ ref('people') }})
