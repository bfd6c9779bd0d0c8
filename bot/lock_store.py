"""Rasa's ticket lock in Redis, with the event loop free and each step one atomic round trip.

Rasa serialises a conversation's turns with a ticket lock: each message takes the next ticket
and waits until every earlier, unexpired ticket is served. Rasa 3.6's `RedisLockStore` keeps the
whole lock as one JSON value and changes it by read, edit, write with the synchronous client:
seven round trips a turn, each stopping Rasa's event loop for every other conversation while
Redis answers, and two servers issuing tickets at the same moment can both read the same lock
and lose one ticket (both then run).

Here the lock is a sorted set per conversation: a member per ticket, "number:expires_ms",
scored by its number. Taking a ticket, trimming the expired ones and asking whether ours is
first is one Lua script (atomic in Redis), so a turn with nobody ahead costs two round trips
(take, release), on `redis.asyncio`. Waiting turns ask again every `POLL_SECONDS` instead of
Rasa's one second. The key expires with the longest ticket, so a crashed server leaves nothing.

In endpoints.yml: `lock_store: {type: bot.lock_store.AsyncRedisLockStore, url, port, db,
password, key_prefix}`, the keys Rasa's Redis lock store takes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

log = logging.getLogger(__name__)
POLL_SECONDS = 0.02  # how often a waiting turn asks again (Rasa's own store: 1 s)

# Drop expired tickets, then (ARGV[2] = "") issue the next one, or (ARGV[2] = a member) look for
# it; either way answer {member, 1 if it is first, 0 if it waits, -1 if it expired}.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if tonumber(string.match(m, ':(%d+)$')) < now then redis.call('ZREM', KEYS[1], m) end
end
local member = ARGV[2]
if member == '' then
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  local number = 0
  if last[2] then number = tonumber(last[2]) + 1 end
  member = number .. ':' .. (now + tonumber(ARGV[1]))
  redis.call('ZADD', KEYS[1], number, member)
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
elseif not redis.call('ZSCORE', KEYS[1], member) then
  return {member, -1}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0)
if first[1] == member then return {member, 1} end
return {member, 0}
"""


class AsyncRedisLockStore(LockStore):
    def __init__(self, endpoint_config: EndpointConfig | None = None, **kwargs: Any) -> None:
        conf = {**(endpoint_config.kwargs if endpoint_config else {}), **kwargs}
        host = (endpoint_config.url if endpoint_config else None) or conf.pop("host", "localhost")
        prefix = str(conf.get("key_prefix") or "")
        self.key_prefix = (f"{prefix}:" if prefix.isalnum() else "") + "lock:"
        self.red = aioredis.Redis(
            host=host,
            port=int(conf.get("port", 6379)),
            db=int(conf.get("db", 1)),
            username=conf.get("username"),
            password=conf.get("password"),
            ssl=bool(conf.get("use_ssl", False)),
            socket_timeout=float(conf.get("socket_timeout", 10)),
        )
        self._take = self.red.register_script(_TAKE)
        super().__init__()

    @asynccontextmanager
    async def lock(
        self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = POLL_SECONDS
    ) -> AsyncGenerator[TicketLock, None]:
        key = self.key_prefix + conversation_id
        lifetime_ms = str(int(lock_lifetime * 1000))
        try:
            member, state = await self._take(keys=[key], args=[lifetime_ms, ""])
        except aioredis.RedisError as exc:
            raise LockError(f"Error while acquiring lock. Error:\n{exc}") from exc
        try:
            while state == 0:  # an earlier turn of this conversation is still running
                await asyncio.sleep(min(wait_time_in_seconds, POLL_SECONDS))
                member, state = await self._take(keys=[key], args=[lifetime_ms, member])
            if state < 0:
                raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.")
            yield TicketLock(conversation_id)
        finally:
            try:
                await self.red.zrem(key, member)  # the set's last member gone, Redis drops the key
            except aioredis.RedisError:
                log.warning("could not release the lock of %s; it expires by itself", conversation_id)
