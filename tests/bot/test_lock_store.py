"""The Redis lock store keeps one conversation's turns apart, in the order they came, across Rasa
servers, and never waits for ever on a turn that died. Against the real Redis (skips without one)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
from rasa.core.lock_store import LockError

from bot.lock_store import AsyncRedisLockStore


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis(host="127.0.0.1", port=6379, socket_timeout=2).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_answers(), reason="Redis does not answer on 127.0.0.1:6379")


def store(prefix: str, **kw: object) -> AsyncRedisLockStore:
    return AsyncRedisLockStore(host="127.0.0.1", port=6379, db=3, key_prefix=prefix, **kw)


def keys(prefix: str) -> list[bytes]:
    return redis.Redis(host="127.0.0.1", port=6379, db=3).keys(f"{prefix}:*")


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:12]


def test_turns_of_one_conversation_run_one_at_a_time_in_the_order_they_came(prefix: str) -> None:
    servers = [store(prefix), store(prefix)]  # two Rasa servers sharing one Redis
    inside: list[int] = []
    order: list[int] = []

    async def turn(i: int) -> None:
        async with servers[i % 2].lock("c1"):
            inside.append(i)
            assert len(inside) == 1, f"turns {inside} ran at once"
            order.append(i)
            await asyncio.sleep(0.01)
            inside.remove(i)

    async def play() -> None:
        for server in servers:  # Redis has the script (a first EVALSHA after its restart loads it)
            async with server.lock("warm-up"):
                pass
        tasks = []
        for i in range(12):
            tasks.append(asyncio.create_task(turn(i)))
            await asyncio.sleep(0.002)  # each asks after the one before
        await asyncio.gather(*tasks)

    asyncio.run(play())
    assert order == list(range(12))
    assert keys(prefix) == []  # nothing left behind


def test_other_conversations_do_not_wait(prefix: str) -> None:
    s = store(prefix)
    events: list[str] = []

    async def play() -> None:
        async def long_turn() -> None:
            async with s.lock("slow"):
                await asyncio.sleep(0.5)
            events.append("slow done")

        async def other() -> None:
            await asyncio.sleep(0.05)
            async with s.lock("quick"):
                events.append("quick in")

        await asyncio.gather(long_turn(), other())

    asyncio.run(play())
    assert events == ["quick in", "slow done"]


def test_a_turn_that_died_holding_the_lock_blocks_only_until_its_ticket_expires(prefix: str) -> None:
    s = store(prefix)

    async def play() -> float:
        # A server took a ticket and died: it never releases.
        await s._take(keys=[f"{prefix}:lock:c1"], args=["300", ""])
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with s.lock("c1"):
            return loop.time() - start

    waited = asyncio.run(play())
    assert 0.2 < waited < 5.0
    assert keys(prefix) == []


def test_a_turn_whose_own_ticket_expired_while_waiting_is_refused(prefix: str) -> None:
    s = store(prefix)

    async def play() -> None:
        # a long turn ahead; the next waits, and its ticket runs out first
        async with s.lock("c1", lock_lifetime=5), s.lock("c1", lock_lifetime=0.2):
            pass

    with pytest.raises(LockError):
        asyncio.run(play())


def test_redis_away_is_a_lock_error() -> None:
    s = AsyncRedisLockStore(host="127.0.0.1", port=1, socket_timeout=1)

    async def play() -> None:
        async with s.lock("c1"):
            pass

    with pytest.raises(LockError):
        asyncio.run(play())
