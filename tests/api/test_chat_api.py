"""The chat API's edges, with Rasa unreachable: bad input is refused, nothing is lost."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

from fastapi.testclient import TestClient
from sqlalchemy import select

from api.chat import clean_text
from ledger.db import Database
from ledger.models import Conversation, HandoffTicket, Message
from tests.api.conftest import WebChat


def test_rasa_down_gives_a_holding_reply_and_queues_for_a_human(web: WebChat, db: Database) -> None:
    cid = web.cid("down")
    r = web.post("down", "我想问下欠款")
    assert r.status_code == 200
    body = r.json()
    assert body["mode"] == "human" and "人工" in body["messages"][0]["text"]
    with db.transaction() as session:
        conv = session.scalar(select(Conversation).where(Conversation.conversation_id == cid))
        assert conv is not None
        stored = session.scalars(select(Message).where(Message.conversation_pk == conv.id).order_by(Message.seq))
        assert next((m.sender, m.text) for m in stored) == ("user", "我想问下欠款")
        reason = session.scalar(select(HandoffTicket.reason).where(HandoffTicket.conversation_pk == conv.id))
        assert reason == "service_unavailable"
    # While the holder waits for a person, each message is kept and answered with the wait (issue 29).
    r2 = web.post("down", "还在吗")
    assert r2.json()["mode"] == "human"
    [waiting] = [m["text"] for m in r2.json()["messages"]]
    assert "系统正在恢复" in waiting and "预计约" in waiting
    assert web.get("down").json()["messages"][0]["seq"] == 2


def test_bad_requests_are_refused_clearly(client: TestClient, web: WebChat) -> None:
    url = f"/v1/chat/{web.cid('bad')}/messages"
    json_auth = {"content-type": "application/json", **web.auth("bad")}
    assert client.post("/v1/chat/short/messages", json={"text": "hi"}).status_code == 422
    assert client.post(url, content=b"{not json", headers=json_auth).status_code == 400
    r = client.post(url, content=b'{"text": "\xff\xfe"}', headers=json_auth)
    assert r.status_code == 400 and r.json()["error"]["code"] == "malformed_json"
    r = web.post("bad", "长" * 1001)
    assert r.status_code == 422 and r.json()["error"]["code"] == "bad_message"
    r = web.post("bad", "\x00\x01")
    assert r.status_code == 422
    r = client.post(url, content=b'{"text": "' + b"a" * 70_000 + b'"}', headers=json_auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies as the body streams in
        yield b'{"text": "'
        for _ in range(20):
            yield b"a" * 4096
        yield b'"}'

    r = client.post(url, content=chunks(), headers=json_auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"


def test_typed_slash_text_cannot_inject_an_intent() -> None:
    assert clean_text("/ask_debt_amount", 100) == "/ask_debt_amount"  # a button payload
    assert clean_text('/inform{"phone": "13800000002"}', 100) == 'inform{"phone": "13800000002"}'
    assert clean_text("/EXTERNAL_outbound_contact", 100) == "EXTERNAL_outbound_contact"
    assert (
        clean_text("  '; DROP TABLE messages; -- 😀 還款 １２３ ", 100) == "'; DROP TABLE messages; -- 😀 還款 １２３"
    )


def test_conversations_are_pinned_to_one_rasa_server(db: Database) -> None:
    import httpx

    from api.chat import ChatService
    from settings import Settings

    service = ChatService(Settings(rasa_urls="http://a:1, http://b:2"), httpx.AsyncClient(), db=db)
    ids = [f"conv-{i:04d}" for i in range(200)]
    first = [service.rasa_for(i) for i in ids]
    assert first == [service.rasa_for(i) for i in ids]  # stable for a conversation's lifetime
    assert {"http://a:1", "http://b:2"} == set(first) and 60 < first.count("http://a:1") < 140
    assert (
        ChatService(Settings(rasa_url="http://only:5005"), httpx.AsyncClient(), db=db).rasa_for("x")
        == "http://only:5005"
    )


def test_turns_beyond_the_rasa_limit_wait_in_order_and_a_late_one_gets_the_holding_reply(db: Database) -> None:
    import asyncio
    from typing import Any

    from api.chat import HOLDING_REPLY
    from tests.fake_rasa import Answer, chat_service, says

    inside, most = 0, 0

    async def slow_rasa(method: str, path: str, body: Any) -> Answer:  # stands in for a busy Rasa server
        nonlocal inside, most
        inside += 1
        most = max(most, inside)
        await asyncio.sleep(0.3)
        inside -= 1
        return says("您好")

    async def run() -> list[str]:
        async with chat_service(db, slow_rasa, rasa_max_in_flight=2, rasa_timeout_seconds=0.75) as service:
            ids = [f"limit-{uuid.uuid4().hex[:8]}" for _ in range(5)]
            results = await asyncio.gather(*(service.handle(cid, "你好") for cid in ids))
        return [r.replies[0].text for r in results]

    replies = asyncio.run(run())
    assert most == 2  # never more than the limit inside Rasa at once
    # Two rounds of 0.3 s fit in the 0.75 s deadline; the fifth turn's wait does not.
    assert replies.count("您好") == 4 and replies.count(HOLDING_REPLY) == 1
