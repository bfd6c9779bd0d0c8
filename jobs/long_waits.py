"""The long-wait check: every 15 s, holders parked for a person longer than `handoff.max_wait_minutes`
are told so, offered a callback, and the bot resumes (ChatService.end_long_waits does one look)."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from jobs.tick import every

log = logging.getLogger("api.chat")
WAIT_CHECK_INTERVAL = 15.0  # seconds between looks for holders who waited too long for a person


class WaitEnder(Protocol):
    async def end_long_waits(self) -> list[str]: ...


async def run_forever(chat: WaitEnder, stop: asyncio.Event, interval: float = WAIT_CHECK_INTERVAL) -> None:
    """Every `interval` seconds, one look; a failing look is tried again at the next tick."""
    await every(interval, chat.end_long_waits, "ending long waits", log, stop)
