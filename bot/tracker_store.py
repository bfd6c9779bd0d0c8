"""Rasa's SQL tracker store, without rebuilding every tracker from its rows on every turn.

Rasa 3.6's `SQLTrackerStore` reads all of a conversation's events back, parses their JSON and
replays them into a fresh tracker at the start of each turn, then counts the stored rows again
to find which events are new when it saves: 40% of the Rasa server's CPU in our profile
(docs/performance.md). This store writes exactly the same rows, but after a save it keeps the
tracker in memory, and at the next turn hands it back once one indexed query shows that
nobody else has written to the conversation since (the highest event id is unchanged).

Rows are scrubbed (`scrub`): user text masked, verification answers blanked in entities and in
the id_last4/card_last4 slots, so a tracker rebuilt from them lacks those and asks again; the
tracker kept in memory keeps them until the verifying action clears them.

Anything it cannot vouch for is read from the database as before: a tracker handed out and
not saved (a failed turn), a tracker changed after its save, a conversation another server
wrote to, a restart of the process. When a session starts, what is kept is what the rows
would give: the events from the session's start on. The database stays the only truth; the
cache only saves work. Each conversation is pinned to one Rasa server and serialised by the
lock store, so the fast path is the normal one.

A turn costs two statements: the highest event id when it starts, one multi-row INSERT when it
saves (Rasa's store: eight, and the whole conversation read back). On PostgreSQL they go
through asyncpg, so Rasa's event loop serves other conversations while the server answers;
Rasa's store waits with the loop stopped (`driver: sqlalchemy` still does, to compare).

In endpoints.yml: `tracker_store: {type: bot.tracker_store.CachedSQLTrackerStore, ...}` with
the SQL store's keys, plus `driver` and `cache_size` (trackers kept, least recently used dropped first;
default 2000, about 50 KB each for an eight-turn conversation, so ~100 MB at most).
On SQLite the file runs in WAL mode with `synchronous=NORMAL`: a commit no longer waits for
the disk twice, and the ledger (not the tracker) is what must survive a power cut.

The fast path reads and writes Rasa's internals (`SQLEvent`, `_event_query`, `session_scope`),
so it runs only on the Rasa release it was written for (`bot.speedups.WRITTEN_FOR`). On any
other, retrieve and save are Rasa's own, with the rows still scrubbed (through a scrubbed copy
of the tracker, built with Rasa's public event API), and the log says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from sqlalchemy.orm import sessionmaker

from bot.speedups import written_for_this_rasa
from ledger.masking import mask, mask_values

log = logging.getLogger(__name__)
SECRET_ENTITIES = ("id_last4", "card_last4", "last4")  # verification answers
SECRET_SLOTS = ("id_last4", "card_last4")


def scrub(data: dict[str, Any]) -> dict[str, Any]:
    """An event as stored: user text masked (numbers, verification answers), the answers' entity
    values and slots blanked. The tracker in memory keeps them for the turn that needs them; a
    tracker rebuilt from the rows merely asks again for what it lacks."""
    kind = data.get("event")
    if kind == "slot" and data.get("name") in SECRET_SLOTS and data.get("value") is not None:
        return {**data, "value": None}
    if kind != "user":
        return data
    data = json.loads(json.dumps(data))  # the parse data is shared with the live tracker: copy first
    parse = data.get("parse_data") or {}
    entities = parse.get("entities") or []
    answers = [str(e.get("value")) for e in entities if e.get("entity") in SECRET_ENTITIES]
    text = mask_values(mask(data.get("text") or ""), answers)
    data["text"] = text
    if parse:
        parse["text"] = text
    for entity in entities:
        if entity.get("entity") in SECRET_ENTITIES:
            entity["value"] = "****"
        elif entity.get("entity") == "phone":
            entity["value"] = mask(str(entity.get("value", "")))
    return data


@dataclass
class _Kept:
    tracker: DialogueStateTracker | None  # None: the conversation had no rows when read
    stored: int  # how many of tracker.events are rows in the database
    last_id: int | None  # the highest event id of the conversation when they were


class _SyncRows:
    """The turn's statements through Rasa's SQLAlchemy engine, on the event loop: SQLite's way
    (in-process, shorter than any hop), and Rasa's own on a server (`driver: sqlalchemy`)."""

    def __init__(self, store: CachedSQLTrackerStore) -> None:
        self.store = store

    async def last_id(self, sender_id: str) -> int | None:
        with self.store.session_scope() as session:
            return self.store._last_id(session, sender_id)

    async def session_rows(self, sender_id: str) -> list[tuple[int, str]]:
        with self.store.session_scope() as session:
            rows = self.store._event_query(session, sender_id, fetch_events_from_all_sessions=False)
            return [(r.id, r.data) for r in rows]

    async def insert(self, rows: list[dict[str, Any]]) -> list[int]:
        with self.store.session_scope() as session:
            events = [self.store.SQLEvent(**row) for row in rows]
            session.add_all(events)
            session.flush()  # ids now: after the commit each would cost a query to refresh
            ids = [e.id for e in events]
            session.commit()
        return ids


class _AsyncRows:
    """The same statements through asyncpg, on Rasa's event loop: while PostgreSQL answers, the
    loop serves other conversations, with no thread to hand over to and back from; each is one
    prepared statement in autocommit (the lock store keeps a conversation's turns apart)."""

    # Rasa's `_event_query`: the rows from the latest session start on, in id order.
    SESSION_ROWS = """
        SELECT id, data FROM events WHERE sender_id = $1 AND (
          timestamp >= (SELECT max(timestamp) FROM events WHERE sender_id = $1 AND type_name = 'session_started')
          OR NOT EXISTS (SELECT 1 FROM events WHERE sender_id = $1 AND type_name = 'session_started'))
        ORDER BY id"""
    INSERT = """
        INSERT INTO events (sender_id, type_name, timestamp, intent_name, action_name, data)
        SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $5::text[], $6::text[])
        RETURNING id"""
    COLUMNS = ("sender_id", "type_name", "timestamp", "intent_name", "action_name", "data")

    def __init__(self, url: Any) -> None:
        self.url = url
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def pool(self) -> Any:
        import asyncpg

        loop = asyncio.get_running_loop()
        if self._pool is None or self._loop is not loop:  # a pool belongs to the loop it was made on
            if self._pool is not None:
                with contextlib.suppress(RuntimeError):  # its loop is closed: its sockets went with it
                    self._pool.terminate()
            schema = os.environ.get("POSTGRESQL_SCHEMA")
            self._loop, self._pool = (
                loop,
                await asyncpg.create_pool(
                    host=self.url.host,
                    port=self.url.port or 5432,
                    user=self.url.username,
                    password=self.url.password or None,
                    database=self.url.database,
                    min_size=1,
                    max_size=10,
                    server_settings={"search_path": schema} if schema else None,
                ),
            )
        return self._pool

    async def _read(self, method: str, query: str, *args: Any) -> Any:
        import asyncpg

        pool = await self.pool()
        try:
            return await getattr(pool, method)(query, *args)
        except (asyncpg.PostgresConnectionError, asyncpg.OperatorInterventionError, asyncpg.InterfaceError, OSError):
            # The server dropped the pool's connections (a restart, a failover): all of them are
            # replaced, and a read is safe to ask again. A write is not retried: whether it
            # committed is unknown, so the turn fails and the next one reads the rows.
            await pool.expire_connections()
            return await getattr(pool, method)(query, *args)

    async def last_id(self, sender_id: str) -> int | None:
        return await self._read("fetchval", "SELECT max(id) FROM events WHERE sender_id = $1", sender_id)

    async def session_rows(self, sender_id: str) -> list[tuple[int, str]]:
        return [(r["id"], r["data"]) for r in await self._read("fetch", self.SESSION_ROWS, sender_id)]

    async def insert(self, rows: list[dict[str, Any]]) -> list[int]:
        columns = [[row[c] for row in rows] for c in self.COLUMNS]
        return [r["id"] for r in await (await self.pool()).fetch(self.INSERT, *columns)]


class CachedSQLTrackerStore(SQLTrackerStore):
    engine: Any  # Rasa's SQLTrackerStore sets it (SQLAlchemy 1.4, untyped)

    def __init__(self, *args: Any, cache_size: int = 2000, driver: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache_size = int(cache_size)
        self._kept: OrderedDict[str, _Kept] = OrderedDict()  # saved, ready for the next turn
        self._out: OrderedDict[str, _Kept] = OrderedDict()  # handed out for the turn in progress
        self.hits = self.misses = 0
        self.fast = written_for_this_rasa("bot.tracker_store")
        if self.fast and self.engine.dialect.name == "sqlite":
            # SQLAlchemy 1.4 gives a SQLite file a NullPool: a new connection, and the schema read
            # again, for every query. One event loop thread uses these, so a small pool is safe.
            url = self.engine.url
            self.engine.dispose()
            self.engine = sa.create_engine(
                url, poolclass=sa.pool.QueuePool, pool_size=2, connect_args={"check_same_thread": False}
            )
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
            self.sessionmaker = sessionmaker(bind=self.engine)
        # PostgreSQL: asyncpg unless endpoints.yml says `driver: sqlalchemy` (a benchmark compares both).
        if driver is None:
            driver = "asyncpg" if self.engine.dialect.name == "postgresql" else "sqlalchemy"
        if driver not in ("asyncpg", "sqlalchemy") or (
            driver == "asyncpg" and self.engine.dialect.name != "postgresql"
        ):
            raise ValueError(f"tracker store driver {driver!r}: asyncpg (PostgreSQL only) or sqlalchemy")
        self.driver = driver
        self.rows: _SyncRows | _AsyncRows = _AsyncRows(self.engine.url) if driver == "asyncpg" else _SyncRows(self)

    def _last_id(self, session: Any, sender_id: str) -> int | None:
        return session.query(sa.func.max(self.SQLEvent.id)).filter(self.SQLEvent.sender_id == sender_id).scalar()

    async def retrieve(self, sender_id: str) -> DialogueStateTracker | None:
        if not self.fast:
            return await super().retrieve(sender_id)
        kept = self._kept.pop(sender_id, None)
        if kept is not None and (kept.tracker is None or len(kept.tracker.events) != kept.stored):
            kept = None  # changed since its save
        if kept is not None and await self.rows.last_id(sender_id) == kept.last_id:  # nobody wrote since
            self.hits += 1
            self._hand_out(sender_id, kept)
            return kept.tracker
        self.misses += 1
        rows = await self.rows.session_rows(sender_id)
        if not rows:
            self._hand_out(sender_id, _Kept(None, 0, None))  # a new conversation: its save writes all
            return None
        if not self.domain:
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, [json.loads(data) for _, data in rows], self.domain.slots)
        self._hand_out(sender_id, _Kept(tracker, len(tracker.events), max(i for i, _ in rows)))
        return tracker

    def _hand_out(self, sender_id: str, kept: _Kept) -> None:
        # Trackers read and never saved (the HTTP API's reads) must not pile up.
        self._out[sender_id] = kept
        self._out.move_to_end(sender_id)
        while len(self._out) > self.cache_size:
            self._out.popitem(last=False)

    async def save(self, tracker: DialogueStateTracker) -> None:
        if not self.fast or self.event_broker is not None:
            # Rasa's own save (streaming events re-reads the tracker, so a broker takes this path
            # too), of a copy whose events are as the rows must hold them: the broker's stream is
            # scrubbed like the rows.
            events = [scrub(event.as_dict()) for event in tracker.events]
            slots = self.domain.slots if self.domain else None
            await super().save(DialogueStateTracker.from_dict(tracker.sender_id, events, slots))
            return
        sender_id = tracker.sender_id
        out = self._out.pop(sender_id, None)
        events = list(tracker.events)
        if out is not None and (out.tracker is tracker or out.tracker is None) and out.stored <= len(events):
            # Handed out for this turn, under the conversation's lock: the rows are as we read them.
            stored, last_id = out.stored, out.last_id
        else:  # not a tracker we handed out: count the rows, as Rasa does
            rows = await self.rows.session_rows(sender_id)
            stored, last_id = len(rows), max((i for i, _ in rows), default=None)
        new = events[stored:]
        if new:
            last_id = max(await self.rows.insert([self._row(sender_id, event) for event in new]))
        self._keep(tracker, last_id, new)

    def _row(self, sender_id: str, event: Any) -> dict[str, Any]:
        data = scrub(event.as_dict())
        return {
            "sender_id": sender_id,
            "type_name": event.type_name,
            "timestamp": data.get("timestamp"),
            "intent_name": data.get("parse_data", {}).get("intent", {}).get("name"),
            "action_name": data.get("name"),
            "data": json.dumps(data),
        }

    def _keep(self, tracker: DialogueStateTracker, last_id: int | None, new: list[Any]) -> None:
        sender_id = tracker.sender_id
        self._kept.pop(sender_id, None)
        starts = [e.timestamp for e in new if isinstance(e, SessionStarted)]
        if starts and self.domain:
            # A session started: the rows' view of the conversation begins at it (Rasa reads
            # the events stamped at or after the latest SessionStarted), so keep exactly that.
            events = [e for e in tracker.events if e.timestamp >= max(starts)]
            tracker = DialogueStateTracker.from_events(sender_id, events, self.domain.slots)
        self._kept[sender_id] = _Kept(tracker, len(tracker.events), last_id)
        while len(self._kept) > self.cache_size:
            self._kept.popitem(last=False)


def _sqlite_pragmas(conn: Any, _record: Any) -> None:
    cur = conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
