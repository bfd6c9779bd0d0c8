"""Transactions: writers take turns without errors or lost updates; readers neither wait for
writers nor can write. Runs against the session database (SQLite, or PostgreSQL when set)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from ledger.db import Database, _writer_lock, transaction


@pytest.fixture
def table(database_url: str) -> Iterator[str]:
    name = f"probe_{uuid.uuid4().hex[:8]}"
    with transaction(database_url) as s:
        s.execute(text(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)"))
        s.execute(text(f"INSERT INTO {name} (id, n) VALUES (1, 0)"))
    yield name
    with transaction(database_url) as s:
        s.execute(text(f"DROP TABLE {name}"))


def test_concurrent_writers_take_turns_and_lose_nothing(database_url: str, table: str) -> None:
    errors: list[BaseException] = []

    # SQLite has no FOR UPDATE (its writers are serialised whole); PostgreSQL needs it.
    lock = "" if database_url.startswith("sqlite") else " FOR UPDATE"

    def bump(times: int) -> None:
        try:
            for _ in range(times):
                with transaction(database_url) as s:
                    n = s.execute(text(f"SELECT n FROM {table} WHERE id = 1{lock}")).scalar_one()
                    s.execute(text(f"UPDATE {table} SET n = :n WHERE id = 1"), {"n": n + 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=bump, args=(25,)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with transaction(database_url, readonly=True) as s:
        assert s.execute(text(f"SELECT n FROM {table}")).scalar_one() == 200


def test_a_read_only_transaction_cannot_write(database_url: str, table: str) -> None:
    with pytest.raises(DBAPIError), transaction(database_url, readonly=True) as s:
        s.execute(text(f"UPDATE {table} SET n = 99 WHERE id = 1"))
    with transaction(database_url, readonly=True) as s:
        assert s.execute(text(f"SELECT n FROM {table}")).scalar_one() == 0


def test_a_reader_does_not_wait_for_an_open_writer(database_url: str, table: str) -> None:
    writing, done = threading.Event(), threading.Event()

    def writer() -> None:
        with transaction(database_url) as s:
            s.execute(text(f"UPDATE {table} SET n = 1 WHERE id = 1"))
            writing.set()
            done.wait(timeout=30)  # hold the write transaction open

    w = threading.Thread(target=writer)
    w.start()
    try:
        assert writing.wait(timeout=10)
        seen: list[int] = []
        reader = threading.Thread(
            target=lambda: seen.append(_read(database_url, table)),
        )
        reader.start()
        reader.join(timeout=5)
        assert seen == [0]  # answered at once, from the last committed state
    finally:
        done.set()
        w.join(timeout=30)
    assert _read(database_url, table) == 1


def _read(database_url: str, table: str) -> int:
    with transaction(database_url, readonly=True) as s:
        return int(s.execute(text(f"SELECT n FROM {table}")).scalar_one())


def test_a_processs_writes_are_served_in_the_order_they_were_asked(db: Database, table: str) -> None:
    import asyncio

    async def many() -> None:
        def write(i: int) -> Callable[[Session], None]:
            return lambda s: s.execute(text(f"INSERT INTO {table} (id, n) VALUES (:id, :n)"), {"id": 100 + i, "n": i})

        await asyncio.gather(*(db.run(write(i)) for i in range(30)))

    asyncio.run(many())
    sqlite = db.is_sqlite
    insertion = "rowid" if sqlite else "n"  # SQLite's rowid follows insertion; PostgreSQL has none
    with db.transaction(readonly=True) as s:
        order = list(s.execute(text(f"SELECT n FROM {table} WHERE id >= 100 ORDER BY {insertion}")).scalars())
    assert sorted(order) == list(range(30))  # nothing lost
    if sqlite:  # one writer at a time: first come, first served
        assert order == list(range(30))


def test_a_writer_kept_waiting_too_long_fails_as_a_busy_database(tmp_path: Path) -> None:
    """The gateway answers a busy database with 503 and Retry-After; a bare TimeoutError was a 500."""
    db = Database(f"sqlite+pysqlite:///{tmp_path / 'busy.db'}")
    lock = _writer_lock(f"{tmp_path / 'busy.db'}.writer-lock")
    lock.timeout = 0.2
    lock.acquire()  # another writer of this process holds it
    try:
        result: list[BaseException] = []

        def write() -> None:
            try:
                db.run_sync(lambda s: s.execute(text("CREATE TABLE t (x INTEGER)")))
            except BaseException as exc:  # what it raised is the point
                result.append(exc)

        worker = threading.Thread(target=write)
        worker.start()
        worker.join(timeout=10)
        assert len(result) == 1 and isinstance(result[0], OperationalError), result
        assert "database is locked" in str(result[0])
    finally:
        lock.release()
        db.dispose()
