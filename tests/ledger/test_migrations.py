"""The migrations build the schema the models describe (on SQLite, and on PostgreSQL in its run)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ledger.db import Database
from ledger.models import Base


def test_the_migrated_database_matches_the_models(db: Database) -> None:
    # The run's database was brought to head by Alembic (tests/conftest.py); a column, index or
    # table added to a model without a migration (or the other way round) shows here.
    with db.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
