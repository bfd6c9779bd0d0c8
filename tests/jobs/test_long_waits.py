"""The long-wait check keeps looking when a look fails, and stops when the gateway stops."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import OperationalError

from jobs import long_waits


class Looks:
    def __init__(self, stop: asyncio.Event, failures: list[Exception], then_stop_after: int) -> None:
        self.stop, self.failures, self.then_stop_after, self.count = stop, failures, then_stop_after, 0

    async def end_long_waits(self) -> list[str]:
        self.count += 1
        if self.count >= self.then_stop_after:
            self.stop.set()
        if self.failures:
            raise self.failures.pop(0)
        return []


def test_a_failing_look_is_tried_again_at_the_next_tick() -> None:
    async def run() -> int:
        stop = asyncio.Event()
        looks = Looks(stop, [OperationalError("select", {}, Exception("gone")), RuntimeError("bug")], 3)
        await asyncio.wait_for(long_waits.run_forever(looks, stop, interval=0), timeout=5)
        return looks.count

    assert asyncio.run(run()) == 3


def test_a_stopped_gateway_looks_no_more() -> None:
    async def run() -> int:
        stop = asyncio.Event()
        stop.set()
        looks = Looks(stop, [], 1)
        await asyncio.wait_for(long_waits.run_forever(looks, stop), timeout=5)
        return looks.count

    assert asyncio.run(run()) == 0
