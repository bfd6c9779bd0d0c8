"""Finding 5: rate limits keyed on X-Forwarded-For that anyone could write; WebSocket turns were not limited."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from api.limits import client_address, limiter
from scripts.stack import Stack
from settings import get_settings
from tests.api.conftest import WebChat


def _conn(peer: str, forwarded: str | None) -> SimpleNamespace:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return SimpleNamespace(client=SimpleNamespace(host=peer), headers=headers)


def test_forwarded_for_is_believed_only_from_a_trusted_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRUSTED_PROXIES", raising=False)
    get_settings.cache_clear()
    assert client_address(_conn("127.0.0.1", "203.0.113.9")) == "127.0.0.1"  # type: ignore[arg-type]
    monkeypatch.setenv("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1")
    get_settings.cache_clear()
    # The right-most address our proxies did not add is the client; what it claimed before is ignored.
    assert client_address(_conn("127.0.0.1", "1.2.3.4, 203.0.113.9, 10.1.1.1")) == "203.0.113.9"  # type: ignore[arg-type]
    assert client_address(_conn("198.51.100.7", "203.0.113.9")) == "198.51.100.7"  # type: ignore[arg-type]
    get_settings.cache_clear()


def test_the_gateway_does_not_let_uvicorn_rewrite_the_client_address(tmp_path: Path) -> None:
    gateway = Stack(var=tmp_path, database_url="sqlite://").commands({}, tmp_path / "e.yml")["gateway"]
    assert "--no-proxy-headers" in gateway  # uvicorn trusts X-Forwarded-For from 127.0.0.1 by default


def test_rotating_forwarded_for_does_not_reset_the_login_limit(client: TestClient) -> None:
    codes = [
        client.post(
            "/v1/agent/login",
            data={"username": "nobody-here", "password": "spraying-passwords"},
            headers={"X-Forwarded-For": f"203.0.113.{i}"},
        ).status_code
        for i in range(12)
    ]
    assert codes[:10] == [401] * 10 and codes[10:] == [429, 429]


def test_websocket_turns_count_against_the_same_limits(
    client: TestClient, web: WebChat, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid, token = web.cid("ws-limit"), web.sessions.setdefault("ws-limit", ("", ""))[1]
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "3")
    get_settings.cache_clear()
    limiter.reset()
    with client.websocket_connect(f"/v1/chat/{cid}/ws", subprotocols=["bearer", token]) as ws:
        answers = []
        for _ in range(4):
            ws.send_json({"text": "你好"})
            answers.append(ws.receive_json())
    assert [("error" in a) for a in answers] == [False, False, False, True]
    assert answers[-1]["error"]["code"] == "rate_limited"
    # The HTTP path shares the conversation's count: it is spent too.
    assert web.post("ws-limit", "你好").status_code == 429
