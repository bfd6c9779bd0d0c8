"""Live updates inside one gateway process: chat pages follow their conversation, agents the queue.

Several gateway workers would put Redis pub/sub here (docs/scaling.md); the interface stays.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any


class Hub:
    def __init__(self) -> None:
        self._topics: defaultdict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)

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


QUEUE_TOPIC = "agents:queue"


def conversation_topic(conversation_id: str) -> str:
    return f"conversation:{conversation_id}"
