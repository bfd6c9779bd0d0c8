"""The long-wait check: every 15 s, holders parked for a person longer than `handoff.max_wait_minutes`
are told so, offered a callback, and the bot resumes (ChatService.end_long_waits does one look)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

log = logging.getLogger("api.chat")
WAIT_CHECK_INTERVAL = 15.0  # seconds between looks for holders who waited too long for a person
DB_AWAY = (OperationalError, InterfaceError, PoolTimeout)  # the database is unreachable, not wrong


class WaitEnder(Protocol):
    async def end_long_waits(self) -> list[str]: ...


async def run_forever(chat: WaitEnder, stop: asyncio.Event, interval: float = WAIT_CHECK_INTERVAL) -> None:
    """Every `interval` seconds, one look; a failing look is tried again at the next tick."""
    while not stop.is_set():
        try:
            await chat.end_long_waits()
        except DB_AWAY as exc:
            log.warning("ending long waits: database unavailable (%s)", type(exc).__name__)
        except Exception:  # keep looking; the next tick tries again
            log.exception("ending long waits failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
