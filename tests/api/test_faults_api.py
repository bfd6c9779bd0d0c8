"""The gateway while a part is away: Rasa or the action server down, the database unreachable.

Rasa and the action server are stood in for over HTTP (tests/fake_rasa.py) by a server whose
state the test switches; the database is the suite's real one (or, for the 503 checks, a
PostgreSQL port nobody serves).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from api.chat import HOLDING_REPLY, TurnResult
from api.chat.turn import InboundLost
from ledger import accounts, campaigns, handoff
from ledger.clock import Clock
from ledger.db import Database
from ledger.models import AuditLog, Conversation, HandoffTicket, Message
from ledger.policy import Policy
from settings import get_settings
from tests.conftest import TZ
from tests.factories import record
from tests.fake_rasa import Answer, chat_service, says


@dataclass
class Parts:
    """What the stand-in Rasa and action server do right now."""

    rasa_up: bool = True
    actions_up: bool = True
    rasa_turns: int = 0

    def answer(self, method: str, path: str, body: Any) -> Answer:
        if path == "/health":  # the action server
            return (200, {"status": "ok"}) if self.actions_up else None
        if not self.rasa_up:
            return None
        if path.endswith("/webhook"):
            self.rasa_turns += 1
            # With the action server away Rasa carries on and says nothing (the action's events are lost).
            return says("好的，我来帮您查一下。", intent="ask_debt_amount") if self.actions_up else says()
        return 200, {"version": "3.6.21"}


def transcript(db: Database, cid: str) -> list[tuple[str, str]]:
    with db.transaction(readonly=True) as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == cid))
        assert conv is not None
        rows = s.scalars(select(Message).where(Message.conversation_pk == conv.id).order_by(Message.seq))
        return [(m.sender, m.text) for m in rows]


def ticket_of(db: Database, cid: str) -> tuple[str, str, str]:
    with db.transaction(readonly=True) as s:
        row = s.execute(
            select(HandoffTicket.reason, HandoffTicket.status, Conversation.mode)
            .join(Conversation, HandoffTicket.conversation_pk == Conversation.id)
            .where(Conversation.conversation_id == cid)
            .order_by(HandoffTicket.id.desc())
        ).first()
        assert row is not None
        return row[0], row[1], row[2]


def test_action_server_down_is_a_holding_reply_once_then_the_bot_takes_back_what_no_agent_took(
    db: Database,
) -> None:
    parts = Parts(actions_up=False)
    alone, taken = (f"fault-{uuid.uuid4().hex[:8]}" for _ in range(2))

    async def run() -> tuple[list[TurnResult], list[str], TurnResult]:
        async with chat_service(db, parts.answer) as service:
            turns = [await service.handle(cid, msg) for cid in (alone, taken) for msg in ("我欠多少", "在吗", "人呢")]
            with db.transaction() as s:  # an agent takes one of them while the bot is away
                handoff.claim(s, taken, "xiaowang")
            assert await service.return_recovered() == []  # still away: nothing goes back
            parts.actions_up = True
            returned = await service.return_recovered()
            again = await service.handle(alone, "我欠多少")
        return turns, returned, again

    turns, returned, again = asyncio.run(run())
    # Each conversation: the holding reply to its first message only, then the wait (issue 29: never silence).
    texts = [[r.text for r in t.replies] for t in turns]
    assert [t[0] if t else None for t in texts][::3] == [HOLDING_REPLY] * 2
    assert all(len(t) == 1 and t[0] != HOLDING_REPLY and "预计" in t[0] for i, t in enumerate(texts) if i % 3)
    assert all(t.mode == "human" for t in turns)
    assert alone in returned and taken not in returned
    assert ticket_of(db, alone) == ("service_unavailable", "recovered", "bot")
    assert ticket_of(db, taken) == ("service_unavailable", "claimed", "human")  # the agent keeps it
    assert again.mode == "bot" and [r.text for r in again.replies] == ["好的，我来帮您查一下。"]
    # Every message kept exactly once, in order; one holding reply; the bot's answer after its return.
    waits = [(who, "<wait>" if "系统正在恢复" in text else text) for who, text in transcript(db, alone)]
    assert waits == [
        ("user", "我欠多少"),
        ("bot", HOLDING_REPLY),
        ("user", "在吗"),
        ("bot", "<wait>"),
        ("user", "人呢"),
        ("bot", "<wait>"),
        ("user", "我欠多少"),
        ("bot", "好的，我来帮您查一下。"),
    ]


def test_a_turn_the_bot_leaves_silent_gets_the_holding_reply(db: Database) -> None:
    """An action that failed inside Rasa (its database write cut off, say) leaves the turn silent."""
    parts = Parts()

    def silent(method: str, path: str, body: Any) -> Answer:
        return says(intent="promise_to_pay") if path.endswith("/webhook") else parts.answer(method, path, body)

    async def run() -> TurnResult:
        async with chat_service(db, silent) as service:
            return await service.handle(f"silent-{uuid.uuid4().hex[:8]}", "我明天还500")

    result = asyncio.run(run())
    assert result.mode == "human" and [r.text for r in result.replies] == [HOLDING_REPLY]


def test_a_message_a_database_crash_lost_is_not_answered_and_is_taken_again(db: Database) -> None:
    """The holder's message is committed without waiting for the disk (the replies' commit puts
    it there). If the database crashes between the two, the message may be gone: the turn stores
    no reply to nothing, fails like a database away (503, the sender retries), and the retry is
    answered once."""
    parts, cid = Parts(), f"crash-{uuid.uuid4().hex[:8]}"
    crashed = False

    def rasa(method: str, path: str, body: Any) -> Answer:
        nonlocal crashed
        if path.endswith("/webhook") and not crashed:  # the crash, while Rasa answers
            crashed = True
            with db.transaction() as s:  # what did not reach the disk is gone after the restart
                conv_pk = select(Conversation.id).where(Conversation.conversation_id == cid)
                s.execute(delete(Message).where(Message.conversation_pk == conv_pk.scalar_subquery()))
        return parts.answer(method, path, body)

    async def run() -> TurnResult:
        async with chat_service(db, rasa) as service:
            calls, run_work = 0, db.run

            async def cut_once(work, **kw):  # type: ignore[no-untyped-def]
                nonlocal calls
                calls += 1
                if calls == 2:  # the replies' first try meets the crashed server
                    raise OperationalError("SELECT 1", None, Exception("server closed the connection"))
                return await run_work(work, **kw)

            service.turns.db = cast(Database, SimpleNamespace(run=cut_once))
            with pytest.raises(InboundLost):
                await service.handle(cid, "我欠多少")
            service.turns.db = db
            return await service.handle(cid, "我欠多少")  # the sender's retry

    again = asyncio.run(run())
    assert [r.text for r in again.replies] == ["好的，我来帮您查一下。"]
    assert transcript(db, cid) == [("user", "我欠多少"), ("bot", "好的，我来帮您查一下。")]


def test_an_outbound_contact_with_rasa_down_gets_one_holding_reply_not_two(db: Database) -> None:
    parts = Parts(rasa_up=False)
    cid = f"sms-seed-{uuid.uuid4().hex[:8]}"

    async def run() -> list[str]:
        async with chat_service(db, parts.answer) as service:
            seeded = await service.seed(cid, "EXTERNAL_outbound_contact", {"account": "x"}, channel="sms")
            turn = await service.handle(cid, "你好", "sms")
        return [r.text for r in [*seeded.replies, *turn.replies]]

    said = asyncio.run(run())  # the holding reply once; the holder's own message then hears the wait
    assert said[0] == HOLDING_REPLY and len(said) == 2 and "系统正在恢复" in said[1]
    assert ticket_of(db, cid)[:2] == ("service_unavailable", "waiting")


@pytest.fixture
def unreachable_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The gateway with its database refusing connections (a PostgreSQL port nobody serves)."""
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:9/nothing")
    monkeypatch.setenv("RASA_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("ACTION_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "100000")
    monkeypatch.setenv("SMS_PROVIDER", "outbox")
    monkeypatch.setenv("SMS_INBOUND_DEV_SECRET", "dev-secret")
    get_settings.cache_clear()
    from api.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as c:
        yield c
    get_settings.cache_clear()


def test_database_away_is_503_with_retry_after_for_web_and_non_2xx_for_sms(unreachable_db: TestClient) -> None:
    r = unreachable_db.post("/v1/chat/sessions", json={})  # a holder opening the chat page
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json()["error"]["code"] == "service_unavailable" and "Traceback" not in r.text
    sms = unreachable_db.post(
        "/v1/sms/inbound",
        data={"From": "+8613800000002", "Body": "你好", "MessageSid": "SMdown1"},
        headers={"X-SMS-Dev-Secret": "dev-secret"},
    )
    assert sms.status_code >= 500  # the provider keeps the message and tries again
    health = unreachable_db.get("/healthz").json()
    assert health["status"] == "degraded" and health["checks"]["db"].startswith("down")


def test_work_cut_off_by_the_server_runs_again_and_is_written_once(committed_db: Database) -> None:
    if not committed_db.url.startswith("postgresql"):
        pytest.skip("needs PostgreSQL (a server that can cut a connection)")
    marker, attempts = f"cut-{uuid.uuid4().hex[:8]}", []

    def work(session: Session) -> None:
        attempts.append(1)
        session.add(AuditLog(actor="test", action="fault.cut", subject=marker, detail={}))
        session.flush()
        if len(attempts) == 1:  # the server ends this connection mid-transaction
            session.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    committed_db.run_sync(work)
    with committed_db.transaction(readonly=True) as s:
        written = s.scalars(select(AuditLog.id).where(AuditLog.subject == marker)).all()
    assert len(attempts) == 2 and len(written) == 1


def test_with_redis_away_due_sends_come_from_the_database(session: Session, policy: Policy) -> None:
    from jobs.due_queue import RedisQueue

    ten_am = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=TZ))
    accounts.upsert_account(session, record(phone=f"135{uuid.uuid4().int % 10**8:08d}"))
    campaigns.create_campaign(session, "r", campaigns.Segment(("M1",)), "reminder", None, policy.contact, ten_am)
    expected = campaigns.due_attempts(session, ten_am.now(), 1000)
    queue = RedisQueue("redis://127.0.0.1:9/0", f"test:due:{uuid.uuid4().hex}")  # nothing listens there
    assert expected and queue.due(session, ten_am.now(), 1000) == expected
    queue.done(expected)  # a stale index entry is harmless; no error either
