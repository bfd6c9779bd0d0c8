"""Web session checks: a live session is asked of the database once, its expiry every time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from api.chat.access import SessionAccess
from api.chat.database import TransactionRunner
from ledger import sessions
from ledger.clock import Clock, process_clock
from ledger.db import transaction


class CountingDb(TransactionRunner):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.asked = 0

    async def run(self, work, *, readonly=False):  # type: ignore[no-untyped-def]
        self.asked += 1
        return await super().run(work, readonly=readonly)


def test_a_session_is_remembered_until_it_expires_and_only_for_its_conversation(database_url: str) -> None:
    clock = process_clock()
    with transaction(database_url) as s:
        opened = sessions.open_session(s, clock)
        other = sessions.open_session(s, clock)
    db = CountingDb(database_url)
    access = SessionAccess(db)
    cid, token = opened.conversation_id, opened.token

    async def run() -> list[bool]:
        later = Clock.at(opened.expires_at + timedelta(seconds=1))
        return [
            await access.allows(cid, token, clock),
            await access.allows(cid, token, clock),  # remembered: no second look
            await access.allows(other.conversation_id, token, clock),  # another conversation's id
            await access.allows(cid, "not-a-token", clock),
            await access.allows(cid, "", clock),
            await access.allows(cid, token, later),  # expired, though remembered
            await access.allows(cid, token, clock),
        ]

    assert asyncio.run(run()) == [True, True, False, False, False, False, True]
    # The first look, the unknown token, and the look again after the expired answer was dropped.
    assert db.asked == 3


def test_remembered_sessions_are_bounded(database_url: str) -> None:
    clock = process_clock()
    with transaction(database_url) as s:
        opened = [sessions.open_session(s, clock) for _ in range(5)]
    access = SessionAccess(TransactionRunner(database_url), size=3)

    async def run() -> list[bool]:
        return [await access.allows(o.conversation_id, o.token, clock) for o in opened]

    assert asyncio.run(run()) == [True] * 5
    assert len(access) == 3
