"""Start the real stack once per run: Rasa server, action server and gateway as processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from scripts.stack import MODEL, Stack, free_port, prepare


@dataclass
class Running:
    stack: Stack
    gateway: str
    admin: dict[str, str]
    secrets: dict[str, str]

    def say(self, conversation_id: str, text: str) -> dict[str, object]:
        r = httpx.post(f"{self.gateway}/v1/chat/{conversation_id}/messages", json={"text": text}, timeout=30)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def texts(self, conversation_id: str, text: str) -> str:
        return "\n".join(m["text"] for m in self.say(conversation_id, text)["messages"])  # type: ignore[index]


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Running]:
    if not MODEL.exists():
        pytest.fail("no trained model: `make train` first (make e2e / make test do it)")
    var = Path(tmp_path_factory.mktemp("stack"))
    secrets = prepare(database_url, var)
    stack = Stack(
        var=var,
        database_url=database_url,
        ports={"rasa": free_port(), "actions": free_port(), "gateway": free_port()},
        env_extra={"RASA_TIMEOUT_SECONDS": os.environ.get("E2E_RASA_TIMEOUT", "15"), "RATE_LIMIT_PER_MINUTE": "100000"},
    )
    stack.start(secrets)
    try:
        stack.wait_healthy(timeout=300)
        yield Running(
            stack,
            f"http://127.0.0.1:{stack.ports['gateway']}",
            {"Authorization": f"Bearer {secrets['ADMIN_API_TOKEN']}"},
            secrets,
        )
    finally:
        stack.stop()


@pytest.fixture
def conversation_id() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"
