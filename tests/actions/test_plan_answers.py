"""The bot answers questions about a running plan from the ledger, on a frozen clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

import actions.account
import actions.negotiate
from actions.account import ActionTellDebt
from actions.negotiate import ActionOfferInstallment, ActionPromiseToPay
from bot.keywords import cues_in
from ledger import accounts, conversations, negotiation
from ledger.clock import Clock
from ledger.db import transaction
from ledger.policy import Policy
from settings import get_settings
from tests.conftest import TZ
from tests.factories import record

AGREED = Clock.at(datetime(2026, 4, 5, 10, tzinfo=TZ))


@pytest.fixture(autouse=True)
def _settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def at(monkeypatch: pytest.MonkeyPatch, day: date) -> None:
    fixed = Clock.at(datetime(day.year, day.month, day.day, 10, tzinfo=TZ))
    for module in (actions.account, actions.negotiate):
        monkeypatch.setattr(module, "clock", lambda fixed=fixed: fixed)


def holder_with_plan(database_url: str, policy: Policy, plan: bool = True) -> str:
    rec = record(phone=f"136{uuid.uuid4().int % 10**8:08d}")
    cid = f"plan-{uuid.uuid4().hex[:10]}"
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
        conv = conversations.get_or_create(s, cid, "web")
        conversations.claim_phone(s, conv, rec.phone)
        assert conversations.verify(s, conv, rec.id_last4, rec.card_last4, AGREED).result == "verified"
        if plan:
            sit = negotiation.situation(s, rec.account_id, policy, AGREED)
            offer = negotiation.offer_for(sit, "installment", AGREED.today(), periods=3)
            negotiation.create_plan(s, rec.account_id, offer, "chat", f"k-{cid}", AGREED)
    return cid


def ask(
    action: Any, cid: str, text: str, intent: str, entities: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.99},
        "entities": entities or [],
        "cues": cues_in(text),
    }
    dispatcher = CollectingDispatcher()
    asyncio.run(action.run(dispatcher, Tracker(cid, {}, latest, [], False, None, {}, "action_listen"), {}))
    return dispatcher.messages


def test_periods_left_and_next_instalment(database_url: str, policy: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = holder_with_plan(database_url, policy)
    at(monkeypatch, date(2026, 4, 20))
    [msg] = ask(ActionOfferInstallment(), cid, "我的分期还剩几期", "ask_plan_terms")
    assert msg["response"] == "utter_plan_status"
    assert (msg["periods"], msg["paid_periods"], msg["left_periods"]) == (3, 0, 3)
    assert (msg["next_due_date"], msg["next_due_amount"], msg["remaining"]) == ("5月5日", "3,478.33元", "10,435.00元")
    [same] = ask(ActionTellDebt(), cid, "下期还多少", "ask_debt_amount")
    assert same["response"] == "utter_plan_status" and same["next_due_amount"] == "3,478.33元"


def test_what_a_missed_instalment_means(database_url: str, policy: Policy, monkeypatch: pytest.MonkeyPatch) -> None:
    cid = holder_with_plan(database_url, policy)
    at(monkeypatch, date(2026, 5, 10))  # the 5 May instalment is past its 3 grace days
    msgs = ask(ActionOfferInstallment(), cid, "这期没还上会怎样", "ask_plan_terms")
    assert [m["response"] for m in msgs] == ["utter_plan_status", "utter_plan_missed", "utter_plan_miss_consequence"]
    assert msgs[1]["arrears"] == "3,478.33元" and (msgs[2]["grace_days"], msgs[2]["break_at"]) == (3, 2)


def test_without_a_plan_the_rule_is_explained_and_offers_stay(
    database_url: str, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    cid = holder_with_plan(database_url, policy, plan=False)
    at(monkeypatch, date(2026, 4, 5))
    [msg] = ask(ActionOfferInstallment(), cid, "分期这期没还上会怎样", "ask_plan_terms")
    assert msg["response"] == "utter_plan_miss_consequence" and "remaining" not in msg
    msgs = ask(ActionOfferInstallment(), cid, "我想分期", "request_installment")
    assert msgs[0]["buttons"]  # the installment options, as before


def test_a_stated_monthly_amount_sizes_a_personalised_plan(
    database_url: str, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    rec = record(
        phone=f"135{uuid.uuid4().int % 10**8:08d}", statement_date=date(2025, 10, 5), due_date=date(2025, 10, 25)
    )
    cid = f"pers-{uuid.uuid4().hex[:10]}"
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
        conv = conversations.get_or_create(s, cid, "web")
        conversations.claim_phone(s, conv, rec.phone)
        conversations.verify(s, conv, rec.id_last4, rec.card_last4, AGREED)
    at(monkeypatch, date(2026, 4, 5))
    latest = {"text": "每个月能还500", "intent": {"name": "inform"}, "entities": [{"entity": "amount", "value": "500"}]}
    slots = {"pending_offer": '{"kind": "personalized", "periods": 60}'}
    dispatcher = CollectingDispatcher()
    events = asyncio.run(
        ActionPromiseToPay().run(dispatcher, Tracker(cid, slots, latest, [], False, None, {}, "action_listen"), {})
    )
    [msg] = dispatcher.messages
    # the plan within policy closest to the figure (issue 28: instalment or personalised, fewest periods)
    assert msg["response"] in ("utter_affordable_personalized", "utter_affordable_installment")
    per_period_fen = int(msg["per_period"].replace(",", "").removesuffix("元").replace(".", ""))
    assert msg["periods"] <= 60 and per_period_fen <= 50_000 and msg["apr"].endswith("%")
    assert f'"periods": {msg["periods"]}' in events[0]["value"]
