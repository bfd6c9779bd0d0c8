"""One engine per process, one session per request or action run."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


class WriterLock:
    """One writer at a time across threads and processes, for one SQLite file.

    SQLite serialises writers itself, but a writer that finds the file locked polls: its busy
    handler sleeps 1, 2, 5, 10 ... up to 100 ms between tries, so under load a short wait becomes
    a long one and turns queue in no order. An flock on a side file wakes the next writer as soon
    as the last one commits. The thread lock makes threads of one process take turns for the
    process's single descriptor; flock does the same between processes.
    """

    def __init__(self, path: str, timeout: float = 30) -> None:
        self.path = path
        self.timeout = timeout
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        # Like SQLite's busy timeout: a thread that would wait on itself fails instead of hanging.
        # Raised as SQLAlchemy raises SQLite's "database is locked", so callers treat it as a busy
        # database (the gateway answers 503 with Retry-After), not as a bug (a bare TimeoutError: 500).
        if not self._thread_lock.acquire(timeout=self.timeout):
            busy = sqlite3.OperationalError(f"database is locked: waited {self.timeout}s for the writer lock")
            raise OperationalError("BEGIN IMMEDIATE", None, busy)
        try:
            if self._fd is None or self._pid != os.getpid():  # a forked child opens its own
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._thread_lock.release()
            raise

    def release(self) -> None:
        assert self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


class _LockingConnection(sqlite3.Connection):
    """A pysqlite connection that gives the writer lock back once COMMIT or ROLLBACK has run."""

    writer_lock: WriterLock | None = None
    holds_lock = False

    def begin_immediate(self) -> None:
        if self.writer_lock is not None and not self.holds_lock:
            self.writer_lock.acquire()
            self.holds_lock = True
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        if self.holds_lock and self.writer_lock is not None:
            self.holds_lock = False
            self.writer_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


_writer_locks: dict[str, WriterLock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(path: str) -> WriterLock:
    """One lock per SQLite file per process, whichever Database opened it: threads of one process
    then wait on the thread lock (with its timeout) rather than on each other's flock."""
    with _writer_locks_guard:
        if path not in _writer_locks:
            _writer_locks[path] = WriterLock(path)
        return _writer_locks[path]


def make_engine(url: str, readonly: bool = False) -> Engine:
    """An engine for `url`. SQLite gets WAL, a busy timeout and one writer at a time.

    `readonly` engines read a consistent snapshot without taking the writer lock (SQLite:
    deferred BEGIN and `query_only`; PostgreSQL: READ ONLY transactions), so reads never queue
    behind writes, and a write attempted through one fails loudly instead of slipping through.
    """
    if url.startswith("sqlite"):
        database = make_url(url).database
        lock = _writer_lock(f"{database}.writer-lock") if database and database != ":memory:" else None
        connection_class = type("LockingConnection", (_LockingConnection,), {"writer_lock": lock})
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False, "factory": connection_class}
        )

        @event.listens_for(engine, "connect")
        def _pragmas(conn: Any, _record: Any) -> None:
            # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented recipe
            # takes it over. BEGIN IMMEDIATE takes the write lock up front, so two writers wait on
            # the lock instead of failing when a read turns into a write.
            conn.isolation_level = None
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            if readonly:
                cur.execute("PRAGMA query_only=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            if readonly:
                conn.exec_driver_sql("BEGIN")
            else:
                conn.connection.dbapi_connection.begin_immediate()

        return engine
    # pool_timeout: with the database away, requests fail fast (the gateway answers 503) rather
    # than queueing for 30 s.
    connect_args = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    engine = create_engine(url, pool_size=10, max_overflow=20, pool_timeout=5, connect_args=connect_args)

    @event.listens_for(engine, "checkout")
    def _pre_ping(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # A connection the server dropped while idle (restart, failover, a proxy's timeout) is
        # replaced at checkout instead of failing the next request (the pool tries another when
        # this raises). Work run by `Database.run_sync` skips the round trip: it runs itself again
        # on a fresh connection when the server cut the old one, which also covers this case.
        if getattr(_unpinged, "active", False):
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise DisconnectionError(str(exc)) from exc

    return engine.execution_options(postgresql_readonly=True) if readonly else engine


_unpinged = threading.local()  # set while `Database.run_sync` runs work: no ping at checkout


T = TypeVar("T")
RETRIES_ON_DISCONNECT = 2


class Database:
    """The process's database: its engines and sessions, and the one way work runs in a transaction.

    Built once by whatever starts the process (the gateway's lifespan, the action server, a
    script) and disposed when it stops. `transaction()` is for code that is already off the event
    loop; `run()` is for async code: the work goes to a worker thread, in one transaction, run
    again if the server cut the connection before COMMIT.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = make_engine(url)
        # SQLite: its own connections, opened query_only; PostgreSQL: the same pool, each
        # transaction marked READ ONLY.
        self.read_engine = (
            make_engine(url, readonly=True)
            if self.is_sqlite
            else self.engine.execution_options(postgresql_readonly=True)
        )
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
        self._writer: ThreadPoolExecutor | None = None
        self._writer_pid = 0

    def __repr__(self) -> str:
        return f"Database({make_url(self.url).render_as_string(hide_password=True)!r})"

    @contextmanager
    def _session(self, readonly: bool) -> Iterator[Session]:
        """A new session (no transaction yet); closed on exit."""
        with (self._read_sessions if readonly else self._sessions)() as session:
            yield session

    @contextmanager
    def transaction(self, readonly: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error.

        `readonly=True` for work that only reads: it never waits for, or holds up, a writer.
        """
        with self._session(readonly) as session, session.begin():
            yield session

    def run_sync(self, work: Callable[[Session], T], readonly: bool = False) -> T:
        """`work` in one transaction, in this thread; run again on a fresh connection if the server
        cut the old one.

        A connection cut before COMMIT (a restarted or failed-over PostgreSQL,
        `pg_terminate_backend`) rolled the work back, so running it again writes it once. A cut
        during COMMIT is not retried: whether it committed is unknown, and the caller answers "try
        again later" instead. So its connections are not pinged at checkout (the pool pings those
        of `transaction()`): a connection that died while idle fails the first statement, and the
        work runs again on a fresh one.
        """
        outer = getattr(_unpinged, "active", False)
        _unpinged.active = True
        try:
            return self._run_sync(work, readonly)
        finally:
            _unpinged.active = outer

    def _run_sync(self, work: Callable[[Session], T], readonly: bool) -> T:
        attempt = 0
        while True:
            with self._session(readonly) as session:
                try:
                    session.begin()
                    result = work(session)
                    session.flush()
                except DBAPIError as exc:
                    session.rollback()
                    if exc.connection_invalidated and attempt < RETRIES_ON_DISCONNECT:
                        attempt += 1
                        continue
                    raise
                except BaseException:
                    session.rollback()
                    raise
                session.commit()
                return result

    async def run(self, work: Callable[[Session], T], *, readonly: bool = False) -> T:
        """`work` in one transaction in a worker thread, off the event loop (see `run_sync`).

        SQLite takes one writer at a time anyway, so a process sends its write transactions
        through one thread, in the order they were asked for, and the pool's threads stay free
        for reads. Reads, and everything on PostgreSQL, run in parallel in the default pool.
        """

        def call() -> T:
            return self.run_sync(work, readonly)

        if self.is_sqlite and not readonly:
            return await asyncio.get_running_loop().run_in_executor(self._writer_thread(), call)
        return await asyncio.to_thread(call)

    def _writer_thread(self) -> ThreadPoolExecutor:
        if self._writer is None or self._writer_pid != os.getpid():  # a forked child makes its own
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
            self._writer_pid = os.getpid()
        return self._writer

    def dispose(self) -> None:
        """Close every pooled connection and the writer thread; the Database is not used again."""
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None
        self.engine.dispose()
        if self.is_sqlite:  # PostgreSQL's read engine is the same pool
            self.read_engine.dispose()


@contextmanager
def transaction(url: str, readonly: bool = False) -> Iterator[Session]:
    """One transaction on a Database built for it and disposed after: for tests, benches and
    one-shot scripts that hold no Database. A process that keeps working builds one Database."""
    db = Database(url)
    try:
        with db.transaction(readonly) as session:
            yield session
    finally:
        db.dispose()
