"""One look every few seconds until the gateway stops: the loop the conversation jobs share.
A failing look (the database away, anything else) is logged and tried again at the next tick."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

DB_AWAY = (OperationalError, InterfaceError, PoolTimeout)  # the database is unreachable, not wrong


async def every(
    interval: float, look: Callable[[], Awaitable[object]], what: str, log: logging.Logger, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        try:
            await look()
        except DB_AWAY as exc:
            log.warning("%s: database unavailable (%s)", what, type(exc).__name__)
        except Exception:  # keep looking; the next tick tries again
            log.exception("%s failed", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
