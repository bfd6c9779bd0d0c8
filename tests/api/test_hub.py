"""Live updates across gateway workers: what one worker publishes, every worker's subscribers hear,
in order. Uses the Redis at 127.0.0.1:6379 (CI has one); skipped where none answers."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis

from api.hub import Hub, RedisHub, conversation_topic

REDIS_URL = "redis://127.0.0.1:6379/5"


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def test_one_process_hub_delivers_to_its_subscribers() -> None:
    async def run() -> list[dict[str, object]]:
        hub = Hub()
        await hub.start()
        queue = hub.subscribe("t")
        hub.publish("t", {"n": 1})
        hub.publish("other", {"n": 2})
        await hub.stop()
        return [queue.get_nowait() for _ in range(queue.qsize())]

    assert asyncio.run(run()) == [{"n": 1}]


@pytest.mark.skipif(not _redis_answers(), reason="needs Redis at 127.0.0.1:6379")
def test_events_reach_every_worker_in_order() -> None:
    prefix = f"test-hub-{uuid.uuid4().hex[:8]}:"
    topic = conversation_topic("conv-0001")

    async def run() -> tuple[list[int], list[int], list[int]]:
        a, b = RedisHub(REDIS_URL, prefix), RedisHub(REDIS_URL, prefix)  # two gateway workers
        await a.start()
        await b.start()
        on_a, on_b, elsewhere = a.subscribe(topic), b.subscribe(topic), b.subscribe("agents:queue")
        for n in range(50):
            a.publish(topic, {"type": "message", "seq": n, "text": "您好"})

        async def take(queue: asyncio.Queue[dict[str, object]], count: int) -> list[int]:
            return [int((await queue.get())["seq"]) for _ in range(count)]  # type: ignore[call-overload]

        got_a, got_b = await asyncio.wait_for(asyncio.gather(take(on_a, 50), take(on_b, 50)), timeout=10)
        await a.stop()
        await b.stop()
        return got_a, got_b, [elsewhere.qsize()]

    got_a, got_b, elsewhere = asyncio.run(run())
    assert got_a == got_b == list(range(50))  # every worker, every event, in the order published
    assert elsewhere == [0]  # and only to the topic's subscribers


def test_a_hub_whose_redis_is_down_still_starts_and_takes_events() -> None:
    async def run() -> None:
        hub = RedisHub("redis://127.0.0.1:1/0", start_timeout=0.5)  # nothing listens there
        await asyncio.wait_for(hub.start(), timeout=10)
        hub.publish("t", {"n": 1})  # logged, never raised: the pages poll
        await asyncio.sleep(0.1)
        await hub.stop()

    asyncio.run(run())
