"""What the tests that run actions directly share: the actions' database (and clock), a verified
conversation, a Tracker as the NLU leaves it, and running one action."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import ModuleType
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.keywords import cues_in
from ledger import accounts, conversations
from ledger.clock import Clock, process_clock
from ledger.db import transaction
from settings import get_settings
from tests.factories import record


@contextmanager
def actions_on(
    database_url: str, monkeypatch: pytest.MonkeyPatch, clock: Clock | None = None, modules: tuple[ModuleType, ...] = ()
) -> Iterator[None]:
    """Actions read the test database (and, for each of `modules`, see `clock` as now) inside."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    for module in modules:
        monkeypatch.setattr(module, "clock", lambda: clock)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def phone(prefix: str = "137") -> str:
    """A fresh mobile number, so tests never share a holder."""
    return f"{prefix}{uuid.uuid4().int % 10**8:08d}"


def verified_conversation(
    database_url: str, overdue_days: int = 45, *, prefix: str = "act", phone_prefix: str = "137"
) -> tuple[str, str]:
    """A verified web conversation (its id, and the account's) with an account `overdue_days`
    overdue on the process clock's today (10,000 yuan statement)."""
    today = process_clock().today()
    due = today - timedelta(days=overdue_days)
    rec = record(phone=phone(phone_prefix), statement_date=due - timedelta(days=20), due_date=due)
    cid = f"{prefix}-{uuid.uuid4().hex[:10]}"
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
        conv = conversations.get_or_create(s, cid, "web")
        conversations.claim_phone(s, conv, rec.phone)
        assert conversations.verify(s, conv, rec.id_last4, rec.card_last4, process_clock()).result == "verified"
    return cid, rec.account_id


def latest_message(text: str, intent: str, entities: list[dict[str, Any]] | None = None, **more: Any) -> dict[str, Any]:
    """The latest message as the NLU leaves it: intent, entities and the keyword cues."""
    return {
        "text": text,
        "intent": {"name": intent, "confidence": 0.99},
        "entities": entities or [],
        "cues": cues_in(text),  # as the NLU adds them (bot/keywords.yml)
        **more,
    }


def tracker_of(
    cid: str, latest: dict[str, Any], slots: dict[str, Any] | None = None, events: list[dict[str, Any]] | None = None
) -> Tracker:
    return Tracker(cid, slots or {}, latest, events or [], False, None, {}, "action_listen")


def run(action: Any, t: Tracker) -> tuple[list[dict[str, Any]], list[Any]]:
    """What `action` says (the dispatcher's messages) and the events it returns."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, t, {}))
    return dispatcher.messages, events


def responses(action: Any, t: Tracker) -> list[str]:
    """The names of the responses `action` answers with."""
    return [m["response"] for m in run(action, t)[0]]
