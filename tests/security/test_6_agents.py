"""Finding 6: every agent read every conversation with its verification facts; tokens could not be revoked;
an agent's WebSocket outlived its token."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from api.hub import QUEUE_TOPIC
from ledger.accounts import upsert_account
from ledger.db import Database
from ledger.models import Conversation
from tests.api.conftest import WebChat
from tests.factories import record


def agent(client: TestClient, admin: dict[str, str], role: str = "agent") -> tuple[str, dict[str, str]]:
    name = f"{role}-{uuid.uuid4().hex[:6]}"
    body = {"username": name, "password": "correct horse 42", "display_name": "小王", "role": role}
    assert client.post("/v1/agents", json=body, headers=admin).status_code == 201
    r = client.post("/v1/agent/login", data={"username": name, "password": "correct horse 42"})
    return name, {"Authorization": f"Bearer {r.json()['access_token']}"}


def _verified_handoff(web: WebChat, db: Database, label: str) -> str:
    """A holder who verified (ID 123X, card 6001) and then waits for a person."""
    cid = web.cid(label)
    rec = record(phone="13911112222")
    web.post(label, "身份证后四位123X，卡号尾号6001")  # Rasa is down here: a holding reply and the queue
    with db.transaction() as s:
        account = upsert_account(s, rec, actor="test")
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == cid))
        assert conv is not None
        conv.account_pk, conv.verified_at = account.id, conv.created_at
    return cid


def test_an_agent_reads_only_what_it_claimed_and_never_the_verification_facts(
    client: TestClient, admin: dict[str, str], web: WebChat, db: Database
) -> None:
    cid = _verified_handoff(web, db, "facts")
    _, alice = agent(client, admin)
    _, bob = agent(client, admin)
    _, boss = agent(client, admin, "supervisor")
    [item] = [i for i in client.get("/v1/agent/queue", headers=alice).json() if i["conversation_id"] == cid]
    assert "123X" not in str(item) and "6001" not in str(item)  # the queue, masked
    assert client.get(f"/v1/conversations/{cid}/transcript", headers=alice).status_code == 404  # not claimed
    assert client.get(f"/v1/agent/conversations/{cid}", headers=alice).status_code == 404
    assert client.post(f"/v1/agent/conversations/{cid}/claim", headers=alice).status_code == 200
    detail = client.get(f"/v1/agent/conversations/{cid}", headers=alice).json()
    assert "123X" not in str(detail) and "6001" not in str(detail)
    assert detail["account"]["id_last4"] == "****" and detail["account"]["card_last4"] == "****"
    assert client.get(f"/v1/conversations/{cid}/transcript", headers=bob).status_code == 404  # alice's
    assert cid not in [i["conversation_id"] for i in client.get("/v1/agent/queue", headers=bob).json()]
    assert client.get(f"/v1/conversations/{cid}/transcript", headers=boss).status_code == 200  # a supervisor
    assert cid in [i["conversation_id"] for i in client.get("/v1/agent/queue", headers=boss).json()]


def closed_code(client: TestClient, ws: WebSocketTestSession, after: float = 0.3) -> int | None:
    """The close code the socket ends with, or None if it is still open (a queue event, published
    once it had time to close, comes through instead: no test waits forever)."""
    time.sleep(after)
    client.app.state.chat.hub.publish(QUEUE_TOPIC, {"type": "queue", "conversation_id": "heartbeat"})  # type: ignore[attr-defined]
    try:
        ws.receive_json()
    except WebSocketDisconnect as exc:
        return exc.code
    return None


def test_logout_and_disabling_end_tokens_and_sockets(client: TestClient, admin: dict[str, str]) -> None:
    _, token = agent(client, admin)
    assert client.get("/v1/agent/queue", headers=token).status_code == 200
    raw = token["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect("/v1/agent/ws", subprotocols=["bearer", raw]) as ws:
        assert client.post("/v1/agent/logout", headers=token).status_code == 204
        assert closed_code(client, ws) == 4401
    assert client.get("/v1/agent/queue", headers=token).status_code == 401

    name, other = agent(client, admin)
    raw = other["Authorization"].removeprefix("Bearer ")
    with client.websocket_connect("/v1/agent/ws", subprotocols=["bearer", raw]) as ws:
        assert client.post(f"/v1/agents/{name}/disable", headers=admin).status_code == 200
        assert closed_code(client, ws) == 4401
    assert client.get("/v1/agent/queue", headers=other).status_code == 401
    r = client.post("/v1/agent/login", data={"username": name, "password": "correct horse 42"})
    assert r.status_code == 401


def test_the_agent_socket_closes_when_its_token_expires(client: TestClient, admin: dict[str, str]) -> None:
    from ledger.clock import Clock, process_clock

    _, token = agent(client, admin)
    raw = token["Authorization"].removeprefix("Bearer ")
    chat = client.app.state.chat  # type: ignore[attr-defined]
    from api.auth import TOKEN_LIFETIME

    # Seen from a clock one second before the token's end, the socket has a second to live.
    chat.clock = Clock.at(process_clock().now() + TOKEN_LIFETIME - timedelta(seconds=1))
    with client.websocket_connect("/v1/agent/ws", subprotocols=["bearer", raw]) as ws:
        assert closed_code(client, ws, after=1.5) == 4401


def test_the_agent_socket_takes_its_token_from_a_header_or_subprotocol_never_the_url(
    client: TestClient, admin: dict[str, str]
) -> None:
    _, token = agent(client, admin)
    raw = token["Authorization"].removeprefix("Bearer ")
    # A token in the URL would be written to proxy logs and browser history: refused.
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(f"/v1/agent/ws?token={raw}"):
        pass
    assert refused.value.code == 4401
    with client.websocket_connect("/v1/agent/ws", headers=token) as ws:
        assert closed_code(client, ws, after=0.3) is None  # open: nothing to say yet
    with client.websocket_connect("/v1/agent/ws", subprotocols=["bearer", raw]) as ws:
        assert ws.accepted_subprotocol == "bearer"
