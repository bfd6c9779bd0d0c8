"""Finding 1: a web conversation's id was its only credential, taken from the URL; verification never lapsed."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from ledger.clock import Clock
from ledger.db import Database
from ledger.models import Conversation, Message
from tests.api.conftest import WebChat
from tests.conftest import TZ


def _stored(db: Database, cid: str) -> int:
    with db.transaction() as s:
        return (
            s.scalar(
                select(func.count())
                .select_from(Message)
                .join(Conversation, Conversation.id == Message.conversation_pk)
                .where(Conversation.conversation_id == cid)
            )
            or 0
        )


def test_a_chosen_id_without_a_session_token_reads_and_writes_nothing(client: TestClient, db: Database) -> None:
    assert client.post("/v1/chat/web-fixed-1234/messages", json={"text": "确认"}).status_code == 401
    assert client.get("/v1/chat/web-fixed-1234/messages?after=0").status_code == 401
    assert _stored(db, "web-fixed-1234") == 0


def test_the_server_chooses_the_id_and_a_token_opens_only_its_own_conversation(
    client: TestClient, web: WebChat, db: Database
) -> None:
    r = client.post("/v1/chat/sessions", json={})
    assert r.status_code == 201
    body = r.json()
    assert set(body) == {"conversation_id", "session_token", "expires_at"}
    victim, attacker = web.cid("victim"), web.cid("attacker")
    assert victim != attacker and len(victim) >= 20  # unguessable, not the caller's choice
    web.post("victim", "你好")
    stolen = {"Authorization": web.auth("attacker")["Authorization"]}
    assert client.get(f"/v1/chat/{victim}/messages?after=0", headers=stolen).status_code == 401
    r = client.post(f"/v1/chat/{victim}/messages", json={"text": "确认"}, headers=stolen)
    assert r.status_code == 401 and _stored(db, victim) == 2  # the victim's turn only
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"/v1/chat/{victim}/ws") as ws:
        ws.send_json({"text": "确认"})  # no token: refused before it is accepted, so this never lands
        ws.receive_json()
    with client.websocket_connect(f"/v1/chat/{victim}/ws", subprotocols=["bearer", web.sessions["victim"][1]]) as ws:
        ws.send_json({"text": "还在吗"})
        assert ws.receive_json()["conversation_id"] == victim


def test_the_page_takes_no_conversation_from_the_url(client: TestClient) -> None:
    script = client.get("/static/chat.js").text
    assert 'params.get("c")' not in script and "/v1/chat/sessions" in script and "Bearer" in script


def test_verification_lapses_after_the_idle_minutes(client: TestClient, web: WebChat, db: Database) -> None:
    cid = web.cid("idle")
    web.post("idle", "你好")
    t0 = datetime(2026, 4, 5, 10, 0, tzinfo=TZ)
    with db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == cid))
        assert conv is not None
        conv.verified_at, conv.last_holder_at = t0, t0
    chat = client.app.state.chat  # type: ignore[attr-defined]
    chat.clock = Clock.at(t0 + timedelta(minutes=14))
    web.post("idle", "还在吗")
    with db.transaction() as s:
        assert s.scalar(select(Conversation.verified_at).where(Conversation.conversation_id == cid)) is not None
    chat.clock = Clock.at(t0 + timedelta(minutes=14 + 15))  # 15 minutes without a word from the holder
    web.post("idle", "我欠多少")
    with db.transaction() as s:
        assert s.scalar(select(Conversation.verified_at).where(Conversation.conversation_id == cid)) is None
