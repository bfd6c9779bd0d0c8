"""Start the real stack once per run: Rasa server, action server and gateway as processes."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from scripts.stack import MODEL, Stack, free_port, prepare


@dataclass
class Running:
    """The running stack. `say(label, text)` speaks in a web chat session: the first use of a label
    opens a session (the server chooses the id; `cid(label)` gives it) and keeps its token."""

    stack: Stack
    gateway: str
    admin: dict[str, str]
    secrets: dict[str, str]
    sessions: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (conversation id, token)
    lock: threading.Lock = field(default_factory=threading.Lock)  # threads saying to one new label share it

    def open_session(self, label: str | None = None, link_token: str | None = None) -> str:
        """A new web chat session (through our SMS link when `link_token` is given); returns its id.
        The session is kept under `label` and under its own id, so either can be said to."""
        body = {"link_token": link_token} if link_token else {}
        r = httpx.post(f"{self.gateway}/v1/chat/sessions", json=body, timeout=30)
        assert r.status_code == 201, r.text
        opened = r.json()
        cid, token = opened["conversation_id"], opened["session_token"]
        self.sessions[cid] = (cid, token)
        if label:
            self.sessions[label] = (cid, token)
        return str(cid)

    @property
    def sms_headers(self) -> dict[str, str]:
        """What the local (outbox) SMS provider's inbound webhook needs: the dev secret."""
        return {"X-SMS-Dev-Secret": self.secrets["SMS_INBOUND_DEV_SECRET"]}

    def cid(self, label: str) -> str:
        """The server-chosen conversation id behind a test's label (opening the session if new)."""
        with self.lock:
            if label not in self.sessions:
                self.open_session(label)
            return self.sessions[label][0]

    def auth(self, label: str) -> dict[str, str]:
        self.cid(label)
        return {"Authorization": f"Bearer {self.sessions[label][1]}"}

    def say(self, conversation_id: str, text: str) -> dict[str, object]:
        cid = self.cid(conversation_id)
        r = httpx.post(
            f"{self.gateway}/v1/chat/{cid}/messages",
            json={"text": text},
            headers=self.auth(conversation_id),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def texts(self, conversation_id: str, text: str) -> str:
        return "\n".join(m["text"] for m in self.say(conversation_id, text)["messages"])  # type: ignore[index]

    def messages(self, conversation_id: str, after: int = 0) -> dict[str, object]:
        r = httpx.get(
            f"{self.gateway}/v1/chat/{self.cid(conversation_id)}/messages",
            params={"after": after},
            headers=self.auth(conversation_id),
            timeout=30,
        )
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]


class _Shared:
    """The one stack of a test run. Conftests that import the `running` fixture (tests/security/
    does) each register a fixture of their own, so the stack is kept here: started by the first
    of them to run, stopped when the last lets go."""

    running: Running | None = None
    users = 0


def _start_stack(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Running:
    if not MODEL.exists():
        pytest.fail("no trained model: `make train` first (make e2e / make test do it)")
    var = Path(tmp_path_factory.mktemp("stack"))
    secrets = prepare(database_url, var)
    stack = Stack(
        var=var,
        database_url=database_url,
        ports={"rasa": free_port(), "actions": free_port(), "gateway": free_port()},
        env_extra={
            "RASA_TIMEOUT_SECONDS": os.environ.get("E2E_RASA_TIMEOUT", "15"),
            "RATE_LIMIT_PER_MINUTE": "100000",
            # This stack shares the run's database with the in-process API tests, whose Rasa is down
            # on purpose: its bot is up, so it would take their handed-off conversations back.
            # tests/faults/ runs the recovery with a stack of its own.
            "BOT_RECOVERY_SECONDS": "0",
        },
    )
    stack.start(secrets)
    # The bare-Rasa benchmark path (bench/turns.py) calls Rasa's REST channel with this secret.
    os.environ.setdefault("RASA_CHANNEL_SECRET", secrets["RASA_CHANNEL_SECRET"])
    try:
        stack.wait_healthy(timeout=300)
    except BaseException:
        stack.stop()
        raise
    return Running(
        stack,
        f"http://127.0.0.1:{stack.ports['gateway']}",
        {"Authorization": f"Bearer {secrets['ADMIN_API_TOKEN']}"},
        secrets,
    )


@pytest.fixture(scope="session")
def running(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Running]:
    if _Shared.running is None:
        _Shared.running = _start_stack(tmp_path_factory, database_url)
    _Shared.users += 1
    try:
        yield _Shared.running
    finally:
        _Shared.users -= 1
        if _Shared.users == 0:
            _Shared.running.stack.stop()
            _Shared.running = None


@pytest.fixture
def conversation_id() -> str:
    """A label for a web conversation; `running.cid(label)` is its real, server-chosen id."""
    return f"e2e-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def nobody_present(database_url: str) -> Iterator[None]:
    """Every agent of the run's database away (other tests' agents too), and again afterwards."""
    from sqlalchemy import update

    from ledger.db import transaction
    from ledger.models import Agent

    with transaction(database_url) as s:
        s.execute(update(Agent).values(presence="away"))
    yield
    with transaction(database_url) as s:
        s.execute(update(Agent).values(presence="away"))
