"""Finding 2: reopening an SMS link returned the verified history; the conversation outlived the link."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.channels import links
from ledger import conversations
from ledger.accounts import upsert_account
from ledger.clock import Clock
from ledger.db import Database
from ledger.models import ChatSession, ContactAttempt, Conversation
from tests.api.conftest import WebChat
from tests.factories import record

KEY = "test-link-signing-key"


@pytest.fixture
def link_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("LINK_SIGNING_KEY", KEY)  # before the app starts (listed before `client`)
    yield KEY


def _attempt(db: Database) -> tuple[int, str]:
    rec = record(phone="13912345678")
    with db.transaction() as s:
        account = upsert_account(s, rec, actor="test")
        attempt = ContactAttempt(account_pk=account.id, channel="sms", status="sent", reason="ok", bucket="M1")
        s.add(attempt)
        s.flush()
        return attempt.id, rec.phone


def test_a_link_opens_a_fresh_conversation_each_time_and_never_the_history(
    link_key: str, client: TestClient, web: WebChat, db: Database
) -> None:
    attempt_id, phone = _attempt(db)
    now = client.app.state.chat.clock.now()  # type: ignore[attr-defined]
    token = links.issue(attempt_id, link_key, now)
    first = web.open("first", link_token=token)
    with db.transaction() as s:  # the holder verified and talked about money in the first one
        conv = conversations.find(s, first)
        assert conv is not None and conv.claimed_phone == phone  # tied to the account
        conv.verified_at = now
        conversations.append_message(s, conv, "bot", "您当前需还款2,145.00元")
    second = web.open("second", link_token=token)  # whoever holds the SMS later
    assert second != first
    seen = web.get("second").json()["messages"]
    assert all("2,145.00" not in m["text"] for m in seen)
    with db.transaction() as s:
        conv2 = conversations.find(s, second)
        assert conv2 is not None and conv2.verified_at is None and conv2.claimed_phone == phone
    stolen = web.auth("second")
    assert client.get(f"/v1/chat/{first}/messages?after=0", headers=stolen).status_code == 401


def test_the_session_ends_with_the_link_and_an_expired_link_opens_nothing(
    link_key: str, client: TestClient, web: WebChat, db: Database
) -> None:
    attempt_id, _ = _attempt(db)
    chat = client.app.state.chat  # type: ignore[attr-defined]
    issued = chat.clock.now() - timedelta(hours=71)
    token = links.issue(attempt_id, link_key, issued)  # one hour of its 72 left
    cid = web.open("late", link_token=token)
    with db.transaction() as s:
        expires = s.scalar(
            select(ChatSession.expires_at)
            .join(Conversation, Conversation.id == ChatSession.conversation_pk)
            .where(Conversation.conversation_id == cid)
        )
    assert expires is not None and expires <= issued + links.LINK_LIFETIME
    chat.clock = Clock.at(issued + links.LINK_LIFETIME + timedelta(minutes=1))
    assert web.post("late", "我欠多少").status_code == 401  # the conversation ended with the link
    r = client.post("/v1/chat/sessions", json={"link_token": token})
    assert r.status_code == 403 and r.json()["error"]["code"] == "link_invalid"
    assert client.get(f"/v1/chat/link?t={token}").status_code in (404, 405)  # the old reader is gone
