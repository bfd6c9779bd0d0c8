"""The dialogue keeps what it asked, sizes offers to the holder and records two-part arrangements
(issue 28). Actions run directly with a real Tracker, the test database and the process clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from sqlalchemy import select

from actions.agree import ActionConfirm
from actions.identity import ActionVerifyIdentity
from actions.negotiate import ActionOfferDeferment, ActionOfferInstallment, ActionPromiseToPay
from ledger.clock import process_clock
from ledger.db import transaction
from ledger.models import Account, Plan, Promise
from tests.actions.helpers import actions_on, latest_message, run, tracker_of, verified_conversation

pytestmark = pytest.mark.calendar


@pytest.fixture(autouse=True)
def _settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with actions_on(database_url, monkeypatch):
        yield


def holder(database_url: str, overdue_days: int = 45) -> tuple[str, str]:
    """A verified web conversation with an account `overdue_days` overdue (10,000 yuan statement)."""
    return verified_conversation(database_url, overdue_days, prefix="arr", phone_prefix="136")


def day(offset: int) -> date:
    return process_clock().today() + timedelta(days=offset)


def when(d: date) -> dict[str, Any]:
    return {"entity": "date", "value": f"{d.day}号", "additional_info": {"iso": d.isoformat()}}


def amount(yuan: str, **info: str) -> dict[str, Any]:
    return {"entity": "amount", "value": yuan, **({"additional_info": info} if info else {})}


def tracker(
    cid: str,
    text: str,
    intent: str,
    entities: list[dict[str, Any]] | None = None,
    pending: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> Tracker:
    latest = latest_message(text, intent, entities)
    return tracker_of(cid, latest, {"pending_offer": json.dumps(pending) if pending else None}, events)


def pending_of(events: list[Any]) -> dict[str, Any] | None:
    values = [e["value"] for e in events if e.get("name") == "pending_offer"]
    return json.loads(values[-1]) if values and values[-1] else None


def rows(database_url: str, account_id: str, model: Any) -> list[Any]:
    with transaction(database_url) as s:
        pk = s.scalar(select(Account.id).where(Account.account_id == account_id))
        found = list(s.scalars(select(model).where(model.account_pk == pk)))
        for r in found:
            s.expunge(r)
        return found


def fen(text: str) -> int:
    return int(text.removesuffix("元").replace(",", "").replace(".", ""))


def cn(d: date) -> str:
    return f"{d.month}月{d.day}日"


# ---------------------------------------------------------------- the bot keeps what it asked


def test_a_bare_date_after_a_deferment_offer_moves_the_deferment(database_url: str) -> None:
    """ "20号" right after "延期到…" is the deferment's new date, not a promise beyond the promise window."""
    cid, account_id = holder(database_url)  # M2: deferment up to 30 days, promises up to 15
    msgs, events = run(ActionOfferDeferment(), tracker(cid, "能延期吗", "request_deferment"))
    assert msgs[-1]["response"] == "utter_deferment_offer" and pending_of(events)["kind"] == "deferment"  # type: ignore[index]
    asked = day(20)
    msgs, events = run(
        ActionVerifyIdentity(), tracker(cid, f"{asked.day}号", "inform", [when(asked)], pending=pending_of(events))
    )
    assert [m["response"] for m in msgs] == ["utter_deferment_offer"] and msgs[0]["pay_on"] == cn(asked)
    assert pending_of(events) == {"kind": "deferment", "pay_on": asked.isoformat()}
    msgs, _ = run(ActionConfirm(), tracker(cid, "确认", "affirm", pending=pending_of(events)))
    assert msgs[0]["response"] == "utter_deferment_created" and msgs[0]["pay_on"] == cn(asked)
    [plan] = rows(database_url, account_id, Plan)
    assert plan.type == "deferment" and plan.status == "active"


def test_a_refused_deferment_date_gets_the_nearest_allowed_and_is_asked_again(database_url: str) -> None:
    cid, _ = holder(database_url)
    offer = {"kind": "deferment", "pay_on": day(10).isoformat()}
    msgs, events = run(ActionPromiseToPay(), tracker(cid, "40天后吧", "promise_to_pay", [when(day(40))], offer))
    assert [m["response"] for m in msgs] == ["utter_deferment_nearest", "utter_deferment_offer"]
    assert msgs[0]["latest"] == cn(day(30)) and msgs[1]["buttons"]
    assert pending_of(events) == {"kind": "deferment", "pay_on": day(30).isoformat()}


def test_confirm_with_nothing_stated_asks_what_to_confirm_and_writes_nothing(database_url: str) -> None:
    cid, account_id = holder(database_url)
    msgs, _ = run(ActionConfirm(), tracker(cid, "确认", "affirm"))
    assert msgs[0]["response"] == "utter_confirm_what" and msgs[0]["buttons"]
    assert rows(database_url, account_id, Plan) == [] and rows(database_url, account_id, Promise) == []


def test_confirm_only_terms_stated_in_the_last_turn(database_url: str) -> None:
    """An offer made two turns ago, then something else said: "确认" asks what to confirm."""
    cid, account_id = holder(database_url)
    offer = {"kind": "installment", "periods": 6}
    history = [
        {"event": "user", "text": "分6期"},
        {"event": "action", "name": "action_offer_installment"},
        {"event": "slot", "name": "pending_offer", "value": json.dumps(offer)},
        {"event": "user", "text": "我欠多少"},
        {"event": "action", "name": "action_tell_debt"},
        {"event": "user", "text": "确认"},
    ]
    msgs, _ = run(ActionConfirm(), tracker(cid, "确认", "affirm", pending=offer, events=history))
    assert msgs[0]["response"] == "utter_confirm_what"
    assert rows(database_url, account_id, Plan) == []
    just_now = [*history[:3], {"event": "user", "text": "确认"}]
    msgs, _ = run(ActionConfirm(), tracker(cid, "确认", "affirm", pending=offer, events=just_now))
    assert msgs[0]["response"] == "utter_installment_created"


def test_confirm_while_the_day_is_missing_asks_for_the_day(database_url: str) -> None:
    cid, account_id = holder(database_url)
    msgs, _ = run(ActionConfirm(), tracker(cid, "确认", "affirm", pending={"kind": "promise_date", "amount": 80_000}))
    assert msgs[0]["response"] == "utter_ask_promise_date" and msgs[0]["amount"] == "800.00元"
    assert rows(database_url, account_id, Promise) == []


def test_a_bare_amount_after_how_much_a_month_sizes_the_plan_not_the_identity(database_url: str) -> None:
    """ "3000" is parsed as a four-digit group; after "每个月大概能还多少" it is the monthly figure."""
    cid, _ = holder(database_url, overdue_days=75)  # M3
    msgs, events = run(
        ActionVerifyIdentity(),
        tracker(cid, "3000", "inform", [{"entity": "last4", "value": "3000"}], {"kind": "personalized", "periods": 60}),
    )
    assert msgs[0]["response"] in ("utter_affordable_installment", "utter_affordable_personalized")
    assert msgs[0]["monthly"] == "3,000.00元"
    assert pending_of(events)["periods"] == msgs[0]["periods"]  # type: ignore[index]


def test_a_bare_number_after_the_instalment_options_picks_the_periods(database_url: str) -> None:
    cid, _ = holder(database_url)
    msgs, events = run(ActionOfferInstallment(), tracker(cid, "我想分期", "request_installment"))
    assert SlotSet("asked_for", "periods") in events and pending_of(events) is None
    t = tracker(cid, "12", "inform")
    t.slots["asked_for"] = "periods"
    msgs, events = run(ActionVerifyIdentity(), t)
    assert msgs[-1]["response"] == "utter_installment_offer" and msgs[-1]["periods"] == 12


def test_a_promise_date_beyond_the_window_is_offered_at_the_latest_day(database_url: str) -> None:
    cid, account_id = holder(database_url)  # M2: promises up to 15 days
    msgs, events = run(
        ActionPromiseToPay(), tracker(cid, "下个月还800", "promise_to_pay", [amount("800"), when(day(40))])
    )
    assert msgs[0]["response"] == "utter_promise_nearest" and msgs[0]["latest"] == cn(day(15))
    assert pending_of(events) == {"kind": "promise", "amount": 80_000, "due": day(15).isoformat()}
    msgs, _ = run(ActionConfirm(), tracker(cid, "好", "affirm", pending=pending_of(events)))
    assert msgs[0]["response"] == "utter_promise_recorded" and msgs[0]["date"] == cn(day(15))
    [promise] = rows(database_url, account_id, Promise)
    assert (promise.amount, promise.due_date) == (80_000, day(15))


# ---------------------------------------------------------------- affordability is not a promise


@pytest.mark.parametrize(
    ("text", "intent", "entities", "monthly", "ranged"),
    [
        ("我一个月能还1200左右", "request_installment", [amount("1200")], "1,200.00元", False),
        ("每个月最多还800", "promise_to_pay", [amount("800")], "800.00元", False),
        ("每个月五六百", "promise_to_pay", [amount("500", low="500", high="600")], "500.00元", True),
        ("一个月能还一千出头", "promise_to_pay", [amount("1000")], "1,000.00元", False),
    ],
)
def test_what_the_holder_can_pay_a_month_sizes_an_offer_and_is_no_promise(
    database_url: str, text: str, intent: str, entities: list[dict[str, Any]], monthly: str, ranged: bool
) -> None:
    cid, account_id = holder(database_url)
    action = ActionOfferInstallment() if intent == "request_installment" else ActionPromiseToPay()
    msgs, events = run(action, tracker(cid, text, intent, entities))
    [msg] = msgs
    assert msg["response"] in (
        "utter_affordable_installment",
        "utter_affordable_personalized",
        "utter_affordable_too_little",
    )
    assert msg["monthly"] == monthly and ("较低" in msg["note"]) is ranged
    if msg["response"] != "utter_affordable_too_little":
        assert msg["apr"].endswith("%") and fen(msg["per_period"]) <= fen(monthly)
        assert pending_of(events)["kind"] in ("installment", "personalized")  # type: ignore[index]
    assert rows(database_url, account_id, Promise) == []  # never read as a promise to pay


def test_sixty_periods_on_an_m4_account_is_the_personalised_plan_for_approval(database_url: str) -> None:
    cid, account_id = holder(database_url, overdue_days=100)  # M4: standard up to 36, personalised up to 60
    msgs, events = run(
        ActionOfferInstallment(),
        tracker(cid, "我失业了，能不能分60期", "request_installment", [{"entity": "installments", "value": "60"}]),
    )
    assert msgs[-1]["response"] == "utter_personalized_periods_offer" and msgs[-1]["periods"] == 60
    assert pending_of(events) == {"kind": "personalized", "periods": 60}
    msgs, events = run(ActionConfirm(), tracker(cid, "要得", "affirm", pending=pending_of(events)))
    assert msgs[0]["response"] == "utter_personalized_submitted" and msgs[0]["periods"] == 60
    [plan] = rows(database_url, account_id, Plan)
    assert plan.type == "personalized" and plan.periods == 60 and plan.status == "pending_approval"


# ---------------------------------------------------------------- two-part arrangements


def test_pay_part_now_and_the_rest_on_a_date_is_two_promises_read_back_from_the_ledger(database_url: str) -> None:
    cid, account_id = holder(database_url)
    rest_day = day(5)
    msgs, events = run(
        ActionPromiseToPay(),
        tracker(cid, f"先还500，剩下的{rest_day.day}号还清", "promise_to_pay", [amount("500"), when(rest_day)]),
    )
    [summary] = msgs
    assert summary["response"] == "utter_parts_summary"
    assert summary["first_amount"] == "500.00元" and summary["first_date"] == cn(day(0))
    assert summary["rest_date"] == cn(rest_day)
    msgs, _ = run(ActionConfirm(), tracker(cid, "确认", "affirm", pending=pending_of(events)))
    [done] = msgs
    assert done["response"] == "utter_parts_recorded"
    promises = sorted(rows(database_url, account_id, Promise), key=lambda p: p.due_date)
    assert [(p.amount, p.due_date, p.status) for p in promises] == [
        (50_000, day(0), "open"),
        (promises[1].amount, rest_day, "open"),
    ]
    # read back from the rows written
    assert done["rest_amount"] == summary["rest_amount"] == f"{promises[1].amount / 100:,.2f}元"
    # the second promise counts only money beyond the first
    assert promises[1].paid_before == promises[0].paid_before + 50_000
    # a retried confirmation writes nothing more
    run(ActionConfirm(), tracker(cid, "确认", "affirm", pending=pending_of(events)))
    assert len(rows(database_url, account_id, Promise)) == 2


def test_the_rest_after_a_proposed_promise_makes_it_two_parts(database_url: str) -> None:
    """ "那剩下的我这周五还 行吗" right after the bot summarised a first payment."""
    cid, _ = holder(database_url)
    first = {"kind": "promise", "amount": 50_000, "due": day(0).isoformat()}
    msgs, events = run(
        ActionPromiseToPay(), tracker(cid, "那剩下的我这周五还 行吗", "promise_to_pay", [when(day(4))], first)
    )
    assert msgs[0]["response"] == "utter_parts_summary" and msgs[0]["first_amount"] == "500.00元"
    assert pending_of(events)["kind"] == "parts"  # type: ignore[index]


def test_yes_with_a_new_date_states_the_changed_terms_before_writing(database_url: str) -> None:
    """ "好的，20天后" after a deferment to another day: the new day is offered, nothing is written yet."""
    cid, account_id = holder(database_url)
    offer = {"kind": "deferment", "pay_on": day(30).isoformat()}
    msgs, events = run(ActionConfirm(), tracker(cid, "好的，20天后", "affirm", [when(day(20))], offer))
    assert msgs[-1]["response"] == "utter_deferment_offer" and msgs[-1]["pay_on"] == cn(day(20))
    assert pending_of(events) == {"kind": "deferment", "pay_on": day(20).isoformat()}
    assert rows(database_url, account_id, Plan) == []
