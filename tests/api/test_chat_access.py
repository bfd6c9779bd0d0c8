"""Web session checks: a live session is asked of the database once, its expiry every time."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from api.chat.access import SessionAccess
from api.chat.service import ChatService
from ledger import sessions
from ledger.clock import Clock, process_clock
from ledger.db import Database
from settings import Settings


class CountingDb:
    """The process's Database, counting the transactions asked of it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.asked = 0

    async def run(self, work, *, readonly=False):  # type: ignore[no-untyped-def]
        self.asked += 1
        return await self.db.run(work, readonly=readonly)


def test_a_session_is_remembered_until_it_expires_and_only_for_its_conversation(
    database_url: str, db: Database
) -> None:
    clock = process_clock()
    with db.transaction() as s:
        opened = sessions.open_session(s, clock)
        other = sessions.open_session(s, clock)
    counting = CountingDb(db)
    access = SessionAccess(counting)  # type: ignore[arg-type]
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
    assert counting.asked == 3


def test_a_session_opened_here_needs_no_look_and_is_still_refused_elsewhere(db: Database) -> None:
    clock = process_clock()
    with db.transaction() as s:
        opened, other = sessions.open_session(s, clock), sessions.open_session(s, clock)
    counting = CountingDb(db)
    access = SessionAccess(counting)  # type: ignore[arg-type]
    access.opened(opened)

    async def run() -> list[bool]:
        return [
            await access.allows(opened.conversation_id, opened.token, clock),
            await access.allows(other.conversation_id, opened.token, clock),  # not its conversation
            await access.allows(opened.conversation_id, opened.token, Clock.at(opened.expires_at)),  # expired
        ]

    assert asyncio.run(run()) == [True, False, False]
    assert counting.asked == 0


def test_remembered_sessions_are_bounded(database_url: str, db: Database) -> None:
    clock = process_clock()
    with db.transaction() as s:
        opened = [sessions.open_session(s, clock) for _ in range(5)]
    access = SessionAccess(db, size=3)

    async def run() -> list[bool]:
        return [await access.allows(o.conversation_id, o.token, clock) for o in opened]

    assert asyncio.run(run()) == [True] * 5
    assert len(access) == 3
    access.opened(opened[0])
    assert len(access) == 3


def test_the_bound_is_the_operators_setting(monkeypatch: pytest.MonkeyPatch, db: Database) -> None:
    monkeypatch.setenv("WEB_SESSION_CACHE", "7")
    assert ChatService(Settings(), httpx.AsyncClient(), db=db).access.size == 7
    monkeypatch.delenv("WEB_SESSION_CACHE")
    assert ChatService(Settings(), httpx.AsyncClient(), db=db).access.size == 4096
