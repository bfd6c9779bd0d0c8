"""Shared fixtures: one migrated database per run (SQLite file, or DATABASE_URL when set),
each test in a transaction rolled back at teardown; a fixed clock; the shipped policy.

No test reads the wall clock. The whole run, and every process an end-to-end test starts, sees
"now" as `TEST_CLOCK` (ledger/clock.py): by default a Monday 10:00; `make test-calendar` runs
the tests marked `calendar` again at each instant of tests/calendar.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from ledger.clock import TEST_CLOCK_ENV, Clock, process_clock
from ledger.db import Database, make_engine
from ledger.policy import Policy, load_policy
from tests.calendar import DEFAULT

ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("Asia/Shanghai")

# Set before any test runs, so in-process code (process_clock) and the stacks it starts agree.
os.environ.setdefault(TEST_CLOCK_ENV, DEFAULT)


def fresh_schema(url: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if url.startswith("postgresql"):
        engine = make_engine(url)
        with engine.begin() as conn:  # start from nothing, whatever an earlier run left
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
    command.upgrade(cfg, "head")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = os.environ.get("DATABASE_URL") or f"sqlite+pysqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    fresh_schema(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """The run's database as a process holds it (a Database), disposed after the test."""
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test, even if the code under test commits."""
    conn = engine.connect()
    outer = conn.begin()
    s = Session(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield s
    finally:
        s.close()
        outer.rollback()
        conn.close()


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy(ROOT / "policy.yml")


@pytest.fixture
def clock() -> Clock:
    """The worked examples' fixed day (a Sunday); they hold whatever the suite's instant is."""
    return Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=TZ))


@pytest.fixture
def suite_clock() -> Clock:
    """The run's instant (TEST_CLOCK): what the processes of a test stack also see as now."""
    return process_clock("Asia/Shanghai")
