"""Each tap's README settings table is its ``--about --format=markdown`` table."""

from __future__ import annotations

import pytest

from tests import readme_settings


@pytest.mark.parametrize("tap", readme_settings.taps())
def test_readme_settings_table_is_the_taps_about(tap):
    readme = (readme_settings.ROOT / tap / "README.md").read_text()
    assert readme_settings.BEGIN.format(tap=tap) in readme, f"{tap}/README.md: no generated settings table"
    assert readme_settings.rendered(tap, readme) == readme, (
        f"{tap}/README.md's settings table differs from `{tap} --about --format=markdown`: "
        "run `python -m tests.readme_settings`"
    )


def test_a_changed_description_is_caught(tmp_path):
    tap = readme_settings.taps()[0]
    readme = readme_settings.rendered(tap, (readme_settings.ROOT / tap / "README.md").read_text())
    row = next(line for line in readme.splitlines() if line.startswith("| start_date |"))
    stale = readme.replace(row, row.replace("|", "| stale", 1), 1)
    assert readme_settings.rendered(tap, stale) == readme != stale
