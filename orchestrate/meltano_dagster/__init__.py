"""A Dagster code location built from the Meltano project's meltano.yml.

``meltano_dagster.definitions:defs`` holds one Dagster job per Meltano job (one
op per task: per extractor, so per account, then the dbt build) and one
schedule per Meltano job schedule. See orchestrate/README.md.
"""
