"""Models and migrations never drift: alembic's own `check` on every owner's database."""

import pytest

from servicekit import migrations


@pytest.mark.parametrize("owner", list(migrations.OWNERS))
def test_the_migrations_build_exactly_what_the_models_describe(owner, test_databases):
    migrations.check(owner)


def test_migrating_twice_changes_nothing(test_databases):
    for owner in migrations.OWNERS:
        migrations.upgrade(owner)
        migrations.check(owner)
