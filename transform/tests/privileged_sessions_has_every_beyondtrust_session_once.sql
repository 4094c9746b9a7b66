-- Every BeyondTrust support session of the raw tables (every account)
-- appears exactly once in privileged_sessions, and nothing else does.
{% set raw %}
    select distinct source_account, cast(lsid as {{ dbt.type_string() }}) as session_id
    from ({{ union_accounts('tap_beyondtrust', 'support_sessions') }}) as unioned
{% endset %}
{{ privileged_sessions_reconcile('beyondtrust', raw) }}
