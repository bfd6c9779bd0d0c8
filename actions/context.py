"""What every action needs: settings, policy, clock and a database transaction off the event loop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from functools import lru_cache
from typing import Any, TypeVar

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session

from ledger.clock import Clock
from ledger.db import transaction
from ledger.money import fen_to_text
from ledger.policy import Policy, cached_policy
from ledger.settings import ROOT, get_settings

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


def percent(rate: Decimal, places: int | None = None) -> str:
    """0.1303 -> '13.03%'; 0.0005 -> '0.05%'."""
    value = rate * 100
    text = f"{value:.{places}f}" if places is not None else f"{value.normalize():f}"
    return f"{text}%"


@lru_cache(maxsize=1)
def _templates() -> Environment:
    return Environment(
        loader=FileSystemLoader(ROOT / "templates" / "chat"),
        undefined=StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(name: str, **values: Any) -> str:
    """Copy that lists several items (one offer a line) lives in templates/chat/, not in code."""
    return _templates().get_template(name).render(**values).strip()


def wait_minutes() -> int:
    """What the holder is told about waiting for a person (policy.yml: handoff)."""
    return policy().handoff.expected_wait_minutes
