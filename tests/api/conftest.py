from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from ledger.db import Database
from settings import get_settings
from tests.conftest import joined_database

ADMIN = "test-admin-token"
SMS_DEV_SECRET = "test-sms-dev-secret"


@pytest.fixture
def db(engine: Engine, database_url: str) -> Iterator[Database]:
    """The API tests' database: what the test and the gateway write is rolled back at the end."""
    with joined_database(engine, database_url) as joined:
        yield joined


@pytest.fixture
def client(database_url: str, db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The gateway with Rasa down. It sends the outbox provider's X-SMS-Dev-Secret on every request
    by default (as the SMS tests' local phone); a test of the check removes it."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ADMIN_API_TOKEN", ADMIN)
    monkeypatch.setenv("RASA_URL", "http://127.0.0.1:9")  # nothing listens: Rasa is "down"
    monkeypatch.setenv("ACTION_SERVER_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AGENT_JWT_KEY", "test-agent-key-that-is-long-enough-for-hs256")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "100000")
    monkeypatch.setenv("SMS_PROVIDER", os.environ.get("TEST_SMS_PROVIDER", "outbox"))
    monkeypatch.setenv("SMS_INBOUND_DEV_SECRET", SMS_DEV_SECRET)
    get_settings.cache_clear()
    from api.deps import database_dep
    from api.limits import limiter
    from api.main import create_app

    limiter.reset()
    app = create_app(db)
    app.dependency_overrides[database_dep] = lambda: db
    with TestClient(app, raise_server_exceptions=False, headers={"X-SMS-Dev-Secret": SMS_DEV_SECRET}) as c:
        yield c
    get_settings.cache_clear()


@pytest.fixture
def admin() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN}"}


@dataclass
class WebChat:
    """Web chat through real sessions: a test names a conversation by a label; the first use opens
    a session (the server chooses the id, `cid(label)`) and every call carries its token."""

    client: TestClient
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)

    def open(self, label: str, link_token: str | None = None) -> str:
        r = self.client.post("/v1/chat/sessions", json={"link_token": link_token} if link_token else {})
        assert r.status_code == 201, r.text
        self.sessions[label] = (r.json()["conversation_id"], r.json()["session_token"])
        return self.sessions[label][0]

    def cid(self, label: str) -> str:
        return self.sessions[label][0] if label in self.sessions else self.open(label)

    def auth(self, label: str) -> dict[str, str]:
        self.cid(label)
        return {"Authorization": f"Bearer {self.sessions[label][1]}"}

    def post(self, label: str, text: str | None = None, **kwargs: Any) -> httpx.Response:
        if text is not None:
            kwargs["json"] = {"text": text}
        return self.client.post(f"/v1/chat/{self.cid(label)}/messages", headers=self.auth(label), **kwargs)

    def get(self, label: str, after: int = 0) -> httpx.Response:
        return self.client.get(f"/v1/chat/{self.cid(label)}/messages?after={after}", headers=self.auth(label))


@pytest.fixture
def web(client: TestClient) -> WebChat:
    return WebChat(client)
