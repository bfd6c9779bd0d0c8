"""Actions run directly: a real Tracker and dispatcher, the test database, exact events."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.agree import ActionConfirm
from actions.conduct import ActionInsult, ActionStopContact, _scope
from actions.negotiate import ActionOfferInstallment, ActionPromiseToPay
from bot.keywords import cues_in
from ledger.clock import process_clock
from ledger.db import transaction
from ledger.models import Plan
from tests.actions.helpers import actions_on, latest_message, run, tracker_of, verified_conversation

# Offers and promise windows are worked out from the process clock's today.
pytestmark = pytest.mark.calendar


@pytest.fixture(autouse=True)
def _settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with actions_on(database_url, monkeypatch):
        yield


def tracker(
    cid: str, text: str, intent: str, entities: list[dict[str, Any]] | None = None, slots: dict[str, Any] | None = None
) -> Tracker:
    return tracker_of(cid, latest_message(text, intent, entities), slots)


def test_offer_then_confirm_writes_exactly_one_plan(database_url: str) -> None:
    cid, _ = verified_conversation(database_url)
    msgs, events = run(
        ActionOfferInstallment(),
        tracker(cid, "分6期", "request_installment", [{"entity": "installments", "value": "6"}]),
    )
    assert msgs[0]["response"] == "utter_installment_offer" and msgs[0]["periods"] == 6
    assert events == [SlotSet("pending_offer", json.dumps({"kind": "installment", "periods": 6}))]
    slots = {"pending_offer": events[0]["value"]}
    for _ in range(2):  # a retried confirmation must not make a second plan
        msgs, events = run(ActionConfirm(), tracker(cid, "好的", "affirm", slots=slots))
    assert msgs[0]["response"] in ("utter_installment_created", "utter_plan_exists")
    with transaction(database_url) as s:
        plans = s.scalars(select(Plan).join(Plan.rows).where(Plan.created_via == "chat")).unique().all()
        mine = [p for p in plans if p.idempotency_key and cid in p.idempotency_key]
    assert len(mine) == 1 and mine[0].periods == 6


def test_nothing_is_offered_before_verification() -> None:
    msgs, events = run(ActionOfferInstallment(), tracker("act-nobody-01", "分期", "request_installment"))
    # A general answer and the way in (issue 28), and the request kept for after it: no offer, no figure.
    assert [m["response"] for m in msgs] == ["utter_can_instal", "utter_need_verification"]
    assert events == [SlotSet("wanted", "installment")]


def test_promise_in_the_past_is_refused(database_url: str) -> None:
    cid, _ = verified_conversation(database_url)
    yesterday = (process_clock().today() - timedelta(days=1)).isoformat()
    msgs, events = run(
        ActionPromiseToPay(),
        tracker(
            cid,
            "昨天还500",
            "promise_to_pay",
            [
                {"entity": "amount", "value": "500"},
                {"entity": "date", "value": "昨天", "additional_info": {"iso": yesterday}},
            ],
        ),
    )
    assert [m["response"] for m in msgs] == ["utter_promise_date_past"] and events == []


def test_promise_beyond_the_window_names_the_latest_date(database_url: str) -> None:
    cid, _ = verified_conversation(database_url, overdue_days=20)  # M1: 10 days
    far = (process_clock().today() + timedelta(days=40)).isoformat()
    msgs, _ = run(
        ActionPromiseToPay(),
        tracker(
            cid, "下个月还", "promise_to_pay", [{"entity": "date", "value": "下个月", "additional_info": {"iso": far}}]
        ),
    )
    # the nearest allowed day is put to the holder as terms to confirm (issue 28), not only named
    assert msgs[0]["response"] == "utter_promise_nearest"
    latest = process_clock().today() + timedelta(days=10)
    assert msgs[0]["latest"] == f"{latest.month}月{latest.day}日"  # dates as the holder reads them


def test_repeated_abuse_gets_an_apology_and_an_offer_not_a_forced_handoff() -> None:
    """Issue 29: insults are met calmly with a concrete offer (a person only if they want one)."""
    cid = f"act-{uuid.uuid4().hex[:10]}"
    msgs, events = run(ActionInsult(), tracker(cid, "滚", "insult", slots={"abuse_count": 2.0}))
    assert [m["response"] for m in msgs] == ["utter_insult", "utter_calm_offer"]
    assert {b["payload"] for b in msgs[1]["buttons"]} == {"/request_human", "/complain"}
    assert events == [SlotSet("abuse_count", 3)]


@pytest.mark.parametrize(
    ("text", "changes"),
    [
        ("TD", [("sms", "opted_out")]),
        ("退订", [("sms", "opted_out")]),
        ("以后只发短信别打电话", [("calls", "opted_out")]),
        ("不要联系我家人", [("third_party", "forbidden")]),
        ("别给我和我老婆打电话", [("third_party", "forbidden"), ("calls", "opted_out")]),
        ("别给我家里打电话", [("third_party", "forbidden")]),  # the family's phone, not the holder's
        ("不要再联系我了", [("sms", "opted_out"), ("calls", "opted_out")]),  # no channel named: both
        ("别再发短信了", [("sms", "opted_out")]),
        ("只打电话，不要短信", [("sms", "opted_out")]),
    ],
)
def test_stop_contact_scope(text: str, changes: list[tuple[str, str]]) -> None:
    assert _scope(frozenset(cues_in(text))) == changes


def test_stop_contact_from_someone_not_verified_is_a_ticket_not_a_change() -> None:
    msgs, _ = run(ActionStopContact(), tracker(f"act-{uuid.uuid4().hex[:10]}", "TD", "stop_contact"))
    assert msgs[0]["response"] == "utter_request_recorded"
