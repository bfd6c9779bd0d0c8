"""Agents: accounts, login with lockout, what a token may reach, and the handoff flow (Rasa down)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from api.limits import limiter
from tests.api.conftest import WebChat


def make_agent(client: TestClient, admin: dict[str, str], password: str = "correct horse 42") -> str:
    username = f"agent-{uuid.uuid4().hex[:6]}"
    r = client.post(
        "/v1/agents", json={"username": username, "password": password, "display_name": "小王"}, headers=admin
    )
    assert r.status_code == 201, r.text
    return username


def login(client: TestClient, username: str, password: str = "correct horse 42") -> dict[str, str]:
    r = client.post("/v1/agent/login", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_only_admin_creates_agents_and_passwords_must_be_real(client: TestClient, admin: dict[str, str]) -> None:
    body = {"username": "someone", "password": "correct horse 42", "display_name": "x"}
    assert client.post("/v1/agents", json=body).status_code == 401
    assert client.post("/v1/agents", json={**body, "password": "short"}, headers=admin).status_code == 422
    name = make_agent(client, admin)
    assert client.post("/v1/agents", json={**body, "username": name}, headers=admin).status_code == 409


def test_login_and_lockout(client: TestClient, admin: dict[str, str]) -> None:
    name = make_agent(client, admin)
    assert login(client, name)
    for _ in range(5):
        r = client.post("/v1/agent/login", data={"username": name, "password": "wrong password"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "login_failed"
    # Locked: even the right password is refused, with the same answer as an unknown username (issue 31).
    r = client.post("/v1/agent/login", data={"username": name, "password": "correct horse 42"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "login_failed"
    unknown = client.post("/v1/agent/login", data={"username": "nobody-here", "password": "whatever123"})
    assert unknown.status_code == 401 and unknown.json() == r.json()


def test_agent_token_reaches_agent_endpoints_only(client: TestClient, admin: dict[str, str]) -> None:
    agent = login(client, make_agent(client, admin))
    assert client.get("/v1/agent/queue", headers=agent).status_code == 200
    assert client.get("/v1/agent/queue", headers=admin).status_code == 401
    assert client.get("/v1/accounts/demo-m2", headers=agent).status_code == 401
    assert client.get("/v1/agent/queue", headers={"Authorization": "Bearer not-a-jwt"}).status_code == 401


def test_handoff_flow_through_the_api(client: TestClient, admin: dict[str, str], web: WebChat) -> None:
    agent = login(client, make_agent(client, admin))
    cid = web.cid("handoff")
    web.post("handoff", "我的卡号是6222021234567890123，帮我看看")
    queue = client.get("/v1/agent/queue", headers=agent).json()
    item = next(i for i in queue if i["conversation_id"] == cid)
    assert item["reason"] == "service_unavailable" and item["status"] == "waiting" and item["account"] is None
    assert "6222021234567890123" not in str(item)
    assert (
        client.post(f"/v1/agent/conversations/{cid}/messages", json={"text": "您好"}, headers=agent).status_code == 409
    )  # claim first
    assert client.post(f"/v1/agent/conversations/{cid}/claim", headers=agent).json()["status"] == "claimed"
    other = login(client, make_agent(client, admin))
    assert client.post(f"/v1/agent/conversations/{cid}/claim", headers=other).status_code == 409
    sent = client.post(
        f"/v1/agent/conversations/{cid}/messages", json={"text": "您好，我是人工客服小王"}, headers=agent
    )
    assert sent.status_code == 200
    seen = web.get("handoff").json()
    assert seen["mode"] == "human" and seen["messages"][-1] == {
        "seq": sent.json()["seq"],
        "text": "您好，我是人工客服小王",
        "sender": "agent",
        "buttons": None,
    }
    # A verified-only detail from an agent to an unverified holder is stopped by the guard, and the
    # agent is told why; nothing is stored or delivered.
    guarded = client.post(f"/v1/agent/conversations/{cid}/messages", json={"text": "您欠款 2145.00 元"}, headers=agent)
    assert guarded.status_code == 422
    error = guarded.json()["error"]
    assert error["code"] == "message_blocked" and error["details"]["reason"] == "unverified_detail"
    assert "核实身份" in error["message"] and "欠款" in error["message"]  # why, and which words
    assert "2145" not in str(client.get(f"/v1/chat/{cid}/messages?after=0").json())
    assert (
        client.post(f"/v1/agent/conversations/{cid}/notes", json={"text": "客户情绪平稳"}, headers=agent).status_code
        == 201
    )
    record = client.get(f"/v1/conversations/{cid}/transcript", headers=agent).json()
    assert [m["sender"] for m in record["messages"]][:2] == ["user", "bot"]
    assert "6222021234567890123" not in str(record) and "0123" not in record["messages"][0]["text"]
    assert client.get(f"/v1/conversations/{cid}/transcript", headers=admin).status_code == 200
    assert client.get(f"/v1/conversations/{cid}/transcript").status_code == 401
    released = client.post(f"/v1/agent/conversations/{cid}/release", headers=agent).json()
    assert released["mode"] == "bot" and released["bot_resumed"] is False  # Rasa is down in this test
    assert cid not in [i["conversation_id"] for i in client.get("/v1/agent/queue", headers=agent).json()]


def test_public_chat_is_rate_limited(web: WebChat, monkeypatch: pytest.MonkeyPatch) -> None:
    from settings import get_settings

    web.cid("limit")  # the session is opened before the limit drops
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "3")
    get_settings.cache_clear()
    limiter.reset()
    codes = [web.get("limit").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert web.get("limit").json()["error"]["code"] == "rate_limited"


def test_an_agent_token_lapses_after_eight_hours_of_the_apps_clock(
    client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from ledger.clock import process_clock

    headers = login(client, make_agent(client, admin))
    issued = process_clock().now()
    monkeypatch.setenv("TEST_CLOCK", (issued + timedelta(hours=7, minutes=59)).isoformat())
    assert client.get("/v1/agent/queue", headers=headers).status_code == 200
    monkeypatch.setenv("TEST_CLOCK", (issued + timedelta(hours=8)).isoformat())
    assert client.get("/v1/agent/queue", headers=headers).status_code == 401
