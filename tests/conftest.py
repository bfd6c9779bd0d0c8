"""Shared fixtures: one migrated database per run (SQLite file, or DATABASE_URL when set),
each test in a transaction rolled back at teardown; a fixed clock; the shipped policy.

`session` is a session in a transaction rolled back after the test; `db` is the run's database
as a process holds it (its commits stay); the API tests replace `db` with a JoinedDatabase, whose
every transaction, the gateway's own included, is rolled back with the test.

No test reads the wall clock. The whole run, and every process an end-to-end test starts, sees
"now" as `TEST_CLOCK` (ledger/clock.py): by default a Monday 10:00; `make test-calendar` runs
the tests marked `calendar` again at each instant of tests/calendar.py.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

from ledger.clock import TEST_CLOCK_ENV, Clock, process_clock
from ledger.db import Database, make_engine
from ledger.policy import Policy, load_policy
from tests.calendar import DEFAULT

ROOT = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("Asia/Shanghai")

# Set before any test runs, so in-process code (process_clock) and the stacks it starts agree.
os.environ.setdefault(TEST_CLOCK_ENV, DEFAULT)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`TEST_SCOPE=database` keeps only the tests that touch the database (every database fixture
    rests on `database_url`): what can differ between SQLite and PostgreSQL. `make test` runs the
    ledger's, the API's and the scripts' such tests against PostgreSQL; `make test-postgres` runs all."""
    if os.environ.get("TEST_SCOPE") != "database":
        return
    keep = [item for item in items if "database_url" in getattr(item, "fixturenames", ())]
    dropped = [item for item in items if "database_url" not in getattr(item, "fixturenames", ())]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


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
def committed_db(database_url: str) -> Iterator[Database]:
    """A Database whose commits stay, also where `db` is rolled back per test: for work another
    process (an end-to-end stack) must see, or a server cutting the connection."""
    database = Database(database_url)
    yield database
    database.dispose()


class JoinedDatabase(Database):
    """A Database whose every transaction is a savepoint on one connection, inside the test's
    outer transaction (rafsaf/minimal-fastapi-postgres-template's pattern): a route's commit
    releases its savepoint, its rollback returns to it, and the test's end undoes everything.

    The gateway's threads (routes, `run`, background jobs) take turns on the connection; a test
    that keeps a transaction open across an HTTP call would wait on itself, so that fails after
    `lock_timeout` seconds instead of hanging."""

    def __init__(self, url: str, connection: Connection, lock_timeout: float = 20) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.connection = connection
        self._turn = threading.RLock()
        self._lock_timeout = lock_timeout
        self._writer = None
        self._writer_pid = 0

    @contextmanager
    def _session(self, readonly: bool) -> Iterator[Session]:
        if not self._turn.acquire(timeout=self._lock_timeout):
            raise TimeoutError("the test's connection stayed busy: a transaction held open across a call?")
        try:
            with Session(bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False) as s:
                yield s
        finally:
            self._turn.release()

    def dispose(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None


@contextmanager
def joined_database(engine: Engine, url: str) -> Iterator[JoinedDatabase]:
    """A JoinedDatabase on a fresh connection; everything written through it is rolled back at exit."""
    conn = engine.connect()
    outer = conn.begin()
    joined = JoinedDatabase(url, conn)
    try:
        yield joined
    finally:
        joined.dispose()
        outer.rollback()
        conn.close()


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
