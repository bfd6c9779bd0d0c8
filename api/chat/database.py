"""The one way the chat parts reach the database: `await db.run(work, readonly=...)`.

`work` takes a Session and runs in one transaction off the event loop. `TransactionRunner` is
that over `ledger.db.run_transaction`; any object with the same `run` (a shared `Database`
built in the app's lifespan) can be passed to `ChatService` instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeVar

from sqlalchemy.orm import Session

from ledger.db import run_transaction

T = TypeVar("T")


class Database(Protocol):
    async def run(self, work: Callable[[Session], T], *, readonly: bool = False) -> T:
        """`work` in one transaction: committed when it returns, rolled back when it raises."""
        ...


class TransactionRunner:
    """A `Database` over `run_transaction` for one URL."""

    def __init__(self, url: str) -> None:
        self.url = url

    async def run(self, work: Callable[[Session], T], *, readonly: bool = False) -> T:
        return await run_transaction(self.url, work, readonly)
