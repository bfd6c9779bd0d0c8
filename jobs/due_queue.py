"""Which campaign sends are due: from the database, or from a Redis sorted set when REDIS_URL is set.

The database stays the truth: the Redis index is filled from it incrementally (new queued rows
by id) and can be rebuilt at any time, and the database claim still decides who sends.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime
from typing import Protocol

import redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from ledger import campaigns

log = logging.getLogger("api.due_queue")


class DueQueue(Protocol):
    def due(self, session: Session, now: datetime, limit: int) -> list[int]: ...

    def done(self, ids: list[int]) -> None: ...

    def requeue(self, attempt_id: int, when: datetime) -> None:
        """A send deferred at send time (the database row is already queued for `when`)."""
        ...


class DatabaseQueue:
    def due(self, session: Session, now: datetime, limit: int) -> list[int]:
        return campaigns.due_attempts(session, now, limit)

    def done(self, ids: list[int]) -> None:
        return None

    def requeue(self, attempt_id: int, when: datetime) -> None:
        return None  # the row itself says when


class RedisQueue:
    """A sorted set of attempt ids scored by their send time."""

    def __init__(self, url: str, key: str = "repay:campaign:due") -> None:
        self.redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.key = key
        self._synced_id = 0

    def sync(self, session: Session) -> int:
        """Index queued attempts added since the last sync (all of them after a restart)."""
        rows = campaigns.queued_after(session, self._synced_id)  # calls are the dialer's, not indexed here
        pipe = self.redis.pipeline(transaction=False)
        for attempt_id, when in rows:
            if when is not None:
                pipe.zadd(self.key, {str(attempt_id): when.timestamp()}, nx=True)
        pipe.execute()
        if rows:
            self._synced_id = rows[-1][0]
        return len(rows)

    def due(self, session: Session, now: datetime, limit: int) -> list[int]:
        try:
            self.sync(session)
            members = self.redis.zrangebyscore(self.key, "-inf", now.timestamp(), start=0, num=limit)
        except RedisError as exc:  # Redis away: the database knows what is due, only slower
            log.warning("redis unavailable, reading due sends from the database: %s", type(exc).__name__)
            self._synced_id = 0  # index everything again once Redis is back
            return campaigns.due_attempts(session, now, limit)
        return [int(str(m, "ascii") if isinstance(m, bytes) else str(m)) for m in members]

    def done(self, ids: list[int]) -> None:
        if ids:
            # A stale entry left by Redis being away is harmless: the database claim decides who sends.
            with contextlib.suppress(RedisError):
                self.redis.zrem(self.key, *[str(i) for i in ids])

    def requeue(self, attempt_id: int, when: datetime) -> None:
        self.redis.zadd(self.key, {str(attempt_id): when.timestamp()})


def queue_for(redis_url: str | None) -> DueQueue:
    return RedisQueue(redis_url) if redis_url else DatabaseQueue()
