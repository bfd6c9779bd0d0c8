"""Live updates: chat pages follow their conversation, agents the queue.

`Hub` delivers inside one gateway process. With REDIS_URL set the gateway uses `RedisHub`,
which passes every event through Redis pub/sub so that each gateway worker delivers it to
its own subscribers (docs/scaling.md). The pages also poll, so a lost event only delays.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger("api.hub")


class Hub:
    def __init__(self) -> None:
        self._topics: defaultdict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

    async def start(self) -> None:
        """Nothing to start in one process."""

    async def stop(self) -> None:
        """Nothing to stop in one process."""

    def subscribe(self, topic: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=100)
        self._topics[topic].add(queue)
        return queue

    def unsubscribe(self, topic: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._topics[topic].discard(queue)
        if not self._topics[topic]:
            del self._topics[topic]

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        for queue in list(self._topics.get(topic, ())):
            if queue.full():  # a stalled client loses old events, never blocks the others
                queue.get_nowait()
            queue.put_nowait(event)


class RedisHub(Hub):
    """Events through Redis pub/sub, so every gateway worker's subscribers hear every worker.

    One task sends this worker's events in the order they were published; one listens and
    hands what it hears to the local subscribers. If Redis goes away, both log it and retry,
    and the pages keep polling meanwhile.
    """

    def __init__(self, url: str, prefix: str = "repay:hub:", start_timeout: float = 5) -> None:
        super().__init__()
        self.prefix = prefix
        self.start_timeout = start_timeout
        self._redis = aioredis.Redis.from_url(url)
        self._outbox: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(maxsize=10_000)
        self._tasks: list[asyncio.Task[None]] = []
        self._listening = asyncio.Event()

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._listen()), asyncio.create_task(self._send())]
        with contextlib.suppress(TimeoutError):  # Redis down: start anyway, the listener retries
            await asyncio.wait_for(self._listening.wait(), timeout=self.start_timeout)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._redis.aclose()

    def publish(self, topic: str, event: dict[str, Any]) -> None:
        try:
            self._outbox.put_nowait((topic, event))
        except asyncio.QueueFull:
            log.warning("live-update outbox full; event dropped (pages poll)", extra={"topic": topic})

    async def _send(self) -> None:
        while True:
            topic, event = await self._outbox.get()
            try:
                await self._redis.publish(self.prefix + topic, json.dumps(event, ensure_ascii=False))
            except RedisError as exc:
                log.warning("live update not published", extra={"topic": topic, "reason": type(exc).__name__})

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.psubscribe(self.prefix + "*")
                    self._listening.set()
                    async for message in pubsub.listen():
                        if message["type"] != "pmessage":
                            continue
                        topic = message["channel"].decode()[len(self.prefix) :]
                        try:
                            event = json.loads(message["data"])
                        except ValueError:  # not one of ours: never let it stop the listener
                            log.warning("unreadable live update ignored", extra={"topic": topic})
                            continue
                        super().publish(topic, event)
            except RedisError as exc:
                log.warning("live-update listener lost Redis; retrying", extra={"reason": type(exc).__name__})
                await asyncio.sleep(1)


QUEUE_TOPIC = "agents:queue"
AGENT_TOKENS_TOPIC = "agents:tokens"  # {"type": "revoked", "jti" | "username"}: consoles using it close
SESSIONS_TOPIC = "chat:sessions"  # {"type": "session_ended", "conversation_id"}: workers forget the session


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"
