"""Giving conversations back to the bot: every few seconds (BOT_RECOVERY_SECONDS), a conversation
handed to a person only because the bot was away returns to the bot once it answers again
(ChatService.return_recovered does one look)."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from jobs.tick import every

log = logging.getLogger("api.chat")


class Recoverer(Protocol):
    async def return_recovered(self) -> object: ...


async def run_forever(chat: Recoverer, stop: asyncio.Event, interval: float) -> None:
    await every(interval, chat.return_recovered, "returning conversations to the bot", log, stop)
