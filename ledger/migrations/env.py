"""Alembic environment: the URL is DATABASE_URL (or an explicit `sqlalchemy.url` set by tests)."""

from alembic import context
from sqlalchemy import create_engine

from ledger.models import Base
from ledger.settings import ledger_settings

config = context.config
url = config.get_main_option("sqlalchemy.url") or ledger_settings().database_url


def run() -> None:
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
