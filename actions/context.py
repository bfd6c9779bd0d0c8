"""What every action needs: settings, policy, clock and a database transaction off the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.orm import Session

from ledger.clock import Clock
from ledger.db import transaction
from ledger.money import fen_to_text
from ledger.policy import Policy, cached_policy
from ledger.settings import get_settings

T = TypeVar("T")
log = logging.getLogger("actions")


def policy() -> Policy:
    return cached_policy(str(get_settings().policy_path))


def clock() -> Clock:
    return Clock.system(get_settings().app_timezone)


async def in_transaction(work: Callable[[Session], T]) -> T:
    """Run blocking database work in a worker thread, in one transaction."""
    url = get_settings().database_url

    def run() -> T:
        with transaction(url) as session:
            return work(session)

    return await asyncio.to_thread(run)


def institution_vars() -> dict[str, str]:
    inst = policy().institution
    return {"institution": inst.name, "hotline": inst.hotline, "app_name": inst.app_name}


def money(fen: int) -> str:
    return fen_to_text(fen)
