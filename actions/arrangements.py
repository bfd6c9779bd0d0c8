"""Arrangements sized to the holder, and answers to what the bot just asked.

- What a holder can pay a month ("我一个月能还1200左右", "每个月最多还800", "五六百") sizes an offer
  (`ledger/affordability.py`); it is never read as a promise to pay.
- A number of periods beyond the standard table ("分60期") gets a personalised plan where policy allows.
- "先还500，剩下的10号还清" is two promises, confirmed together and written together.
- A bare answer ("20号", "3000", "12期") right after the bot asked for one fills that answer. What was
  asked lives in the `pending_offer` slot (its `kind`: see `AWAITS`), never only in the reply text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol, TypeVar

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import (
    SEE_INSTALLMENTS,
    TO_A_PERSON,
    answer_then_verify,
    chinese_date,
    clock,
    cues,
    in_transaction,
    money,
    refused,
)
from actions.offers import (
    CONFIRM_BUTTONS,
    _pending,
    entity,
    entity_amount,
    offer_vars,
    pending,
    verified_situation,
)
from ledger import affordability, negotiation
from ledger.accounts import audit
from ledger.errors import LedgerError
from ledger.money import yuan_to_fen
from ledger.plans import PlanOffer

# What each kind of pending offer waits for: "yes" (terms stated, to confirm), or a detail.
AWAITS = {
    "installment": "yes",
    "deferment": "yes",
    "promise": "yes",
    "parts": "yes",
    "personalized": "monthly",  # a monthly amount sizes it; "yes" submits it as stated
    "promise_date": "date",
}
SUBMIT_BUTTONS = [{"title": "提交申请", "payload": "/affirm"}, {"title": "先不用", "payload": "/deny"}]


def awaits(offer: dict[str, Any] | None) -> str | None:
    """What the bot is waiting for: 'yes', 'date', 'periods', 'monthly', or None."""
    return AWAITS.get(str(offer.get("kind"))) if offer else None


def _to_fen(value: Any) -> int | None:
    try:
        return yuan_to_fen(Decimal(str(value)).quantize(Decimal("0.01")))
    except (InvalidOperation, LedgerError, ArithmeticError):
        return None


def dates(tracker: Tracker) -> list[date]:
    """Every resolved date of the latest message, in the order written."""
    found = []
    for e in tracker.latest_message.get("entities", []):
        iso = (e.get("additional_info") or {}).get("iso") if e.get("entity") == "date" else None
        if iso:
            found.append(date.fromisoformat(iso))
    return found


def monthly_said(tracker: Tracker) -> tuple[int, str] | None:
    """The monthly figure the holder named, in fen, and how it was read.

    A range ("五六百", "每月500到600": a `low`/`high` on the entity, or two amounts) is read at its
    lower end, and the reply says so; "一千出头" is read as the figure named.
    """
    amounts = [e for e in tracker.latest_message.get("entities", []) if e.get("entity") == "amount"]
    if not amounts:
        return None
    info = amounts[0].get("additional_info") or {}
    if info.get("low") is not None:
        low = _to_fen(info["low"])
        return (low, "range") if low else None
    values = [f for f in (_to_fen(a.get("value")) for a in amounts) if f]
    if len(values) >= 2:
        return min(values), "range"
    return (values[0], "exact") if values else None


def bare_number(tracker: Tracker) -> int | None:
    """A message that is only digits (parsed as an ID/card group or a number): its value."""
    text = (tracker.latest_message.get("text") or "").strip()
    return int(text) if text.isdigit() and len(text) <= 7 else None


class _Proposal(Protocol):  # the ledger's proposals (affordability, periods, deferment)
    @property
    def outcome(self) -> str: ...

    @property
    def offer(self) -> PlanOffer | None: ...


P = TypeVar("P", bound=_Proposal)


async def _propose(
    tracker: Tracker, propose: Callable[[negotiation.Situation], P], **logged: Any
) -> tuple[str, P | None]:
    """The verified holder's situation put to a ledger proposal, the offer (if any) audited, in one
    transaction; ("unverified", None) before verification."""

    def build(session: Session) -> tuple[str, P | None]:
        found = verified_situation(session, tracker.sender_id)
        if found is None:
            return "unverified", None
        account_id, sit = found
        proposal = propose(sit)
        if proposal.offer is not None:
            audit(session, tracker.sender_id, "plan.offer", account_id, kind=proposal.offer.type, **logged)
        return proposal.outcome, proposal

    return await in_transaction(build)


def reading_note(how: str, monthly: int) -> str:
    return f"（您说的是一个范围，按较低的{money(monthly)}计算）" if how == "range" else ""


async def offer_for_monthly(
    dispatcher: CollectingDispatcher, tracker: Tracker, monthly: int, how: str = "exact"
) -> list[EventType]:
    """The plan within policy closest to what the holder can pay a month; never a promise."""
    today = clock().today()
    kind, proposal = await _propose(
        tracker, lambda sit: affordability.size_to_monthly(sit, today, monthly), monthly=monthly
    )
    if refused(dispatcher, kind):
        return []
    assert proposal is not None
    note = reading_note(how, monthly)
    if kind == "clears_now":
        dispatcher.utter_message(
            response="utter_affordable_clears",
            monthly=money(monthly),
            note=note,
            outstanding=money(proposal.outstanding),
        )
        return [_pending("promise_date", amount=proposal.outstanding)]
    if kind == "too_little" and not proposal.max_periods:  # the bucket offers no plan at all
        dispatcher.utter_message(response="utter_no_installment", buttons=[TO_A_PERSON])
        return []
    if kind == "too_little":
        dispatcher.utter_message(
            response="utter_affordable_too_little",
            monthly=money(monthly),
            note=note,
            min_monthly=money(proposal.min_monthly),
            max_periods=proposal.max_periods,
            buttons=[TO_A_PERSON],
        )
        return []
    assert proposal.offer is not None
    facts = offer_vars(proposal.offer)
    if kind == "personalized":
        dispatcher.utter_message(
            response="utter_affordable_personalized", monthly=money(monthly), note=note, buttons=SUBMIT_BUTTONS, **facts
        )
        return [_pending("personalized", periods=proposal.offer.periods)]
    dispatcher.utter_message(
        response="utter_affordable_installment", monthly=money(monthly), note=note, buttons=CONFIRM_BUTTONS, **facts
    )
    return [_pending("installment", periods=proposal.offer.periods)]


async def offer_for_periods(dispatcher: CollectingDispatcher, tracker: Tracker, periods: int) -> list[EventType]:
    """Periods the standard table lacks ("分60期"): a personalised plan where policy allows; else the nearest."""
    today = clock().today()
    kind, proposal = await _propose(
        tracker, lambda sit: affordability.plan_for_periods(sit, today, periods), periods=periods
    )
    if refused(dispatcher, kind):
        return []
    assert proposal is not None
    if kind == "none":
        dispatcher.utter_message(response="utter_no_installment", buttons=[TO_A_PERSON])
        return []
    assert proposal.offer is not None
    if kind == "personalized":
        dispatcher.utter_message(
            response="utter_personalized_periods_offer", buttons=SUBMIT_BUTTONS, **offer_vars(proposal.offer)
        )
        return [_pending("personalized", periods=proposal.offer.periods)]
    if kind == "nearest":
        dispatcher.utter_message(
            response="utter_installment_not_offered",
            requested=periods,
            allowed="、".join(f"{p}期" for p in proposal.allowed_periods),
        )
    dispatcher.utter_message(response="utter_installment_offer", buttons=CONFIRM_BUTTONS, **offer_vars(proposal.offer))
    return [_pending("installment", periods=proposal.offer.periods)]


async def propose_parts(
    dispatcher: CollectingDispatcher, tracker: Tracker, first: int | None, first_due: date | None, rest_due: date
) -> list[EventType]:
    """A payment now or on a date, and the rest later: two promises to confirm together.

    Without a first part in this message, the promise just proposed is the first part ("那剩下的我这周五
    还"); without that either, what open promises still wait for counts as paid first.
    """
    today = clock().today()
    offer = pending(tracker) or {}
    if first is None and offer.get("kind") == "promise":
        first, first_due = int(offer["amount"]), date.fromisoformat(offer["due"])

    def check(session: Session) -> tuple[str, Any]:
        found = verified_situation(session, tracker.sender_id)
        if found is None:
            return "unverified", None
        account_id, sit = found
        if first is None:
            ahead = negotiation.promised_unpaid(session, account_id)
            return "rest", affordability.rest_after(sit, today, rest_due, ahead)
        proposal = affordability.propose_two_part(sit, today, first, first_due or today, rest_due)
        return proposal.outcome, proposal

    kind, found = await in_transaction(check, readonly=True)
    if refused(dispatcher, kind):
        return []
    if kind == "rest":  # nothing proposed before: the rest is one promise of what is left
        if not found:
            dispatcher.utter_message(response="utter_debt_settled")
            return []
        return await propose_promise(dispatcher, tracker, found, rest_due)
    proposal: affordability.TwoPartProposal = found
    if kind == "settled":
        dispatcher.utter_message(response="utter_debt_settled")
        return []
    if kind in ("past", "too_late"):
        latest = chinese_date(proposal.latest) if proposal.latest else ""
        response = "utter_promise_date_past" if kind == "past" else "utter_promise_too_late"
        dispatcher.utter_message(response=response, latest=latest)
        return []
    if kind == "order":
        dispatcher.utter_message(response="utter_parts_order")
        return []
    if kind == "too_much":
        return await propose_promise(dispatcher, tracker, first, first_due or today)
    if kind == "one_is_enough":
        part = proposal.parts[0]
        dispatcher.utter_message(
            response="utter_promise_summary",
            buttons=CONFIRM_BUTTONS,
            amount=money(part.amount),
            date=chinese_date(part.due),
        )
        return [_pending("promise", amount=part.amount, due=part.due.isoformat())]
    one, two = proposal.parts
    dispatcher.utter_message(
        response="utter_parts_summary",
        buttons=CONFIRM_BUTTONS,
        first_amount=money(one.amount),
        first_date=chinese_date(one.due),
        rest_amount=money(two.amount),
        rest_date=chinese_date(two.due),
    )
    return [_pending("parts", first=one.amount, first_due=one.due.isoformat(), rest_due=two.due.isoformat())]


async def fill_requested(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
) -> list[EventType] | None:
    """A bare detail answering what the bot just asked or stated; None when the message is not one.

    After a deferment offer a date moves the deferment (not a promise); after a promise summary a date
    or an amount changes that term; after "which day?" a date completes the promise; after "how much
    a month?" an amount (digits alone included) sizes the plan; after the instalment options a number
    picks the periods.
    """
    offer = pending(tracker)
    periods = entity(tracker, "installments")
    number = bare_number(tracker)
    if tracker.get_slot("asked_for") == "periods" and set_last_turn(tracker, "asked_for"):
        # after the list of instalments: "12" or "12期" picks the periods
        picked = int(periods["value"]) if periods is not None else number
        if picked is not None and 2 <= picked <= 60:
            return await offer_for_periods(dispatcher, tracker, picked)
    waiting = awaits(offer)
    if offer is None or waiting is None:
        return None
    said = cues(tracker)
    days = dates(tracker)
    amount = entity_amount(tracker)
    kind = offer.get("kind")
    if periods is not None and kind in ("installment", "personalized"):
        return await offer_for_periods(dispatcher, tracker, int(periods["value"]))
    if "the_rest" in said and days:
        return await propose_parts(dispatcher, tracker, None, None, days[-1])
    if waiting == "monthly" and (amount or number):
        found = monthly_said(tracker)
        monthly, how = found if found else ((amount or (number or 0) * 100), "exact")
        return await offer_for_monthly(dispatcher, tracker, monthly, how)
    if kind == "deferment" and days and amount is None:
        return await offer_deferment(dispatcher, tracker, days[0])
    if kind == "promise_date" and days:
        return await propose_promise(dispatcher, tracker, amount or int(offer["amount"]), days[0])
    if kind == "promise" and (days or amount):
        due = days[0] if days else date.fromisoformat(offer["due"])
        return await propose_promise(dispatcher, tracker, amount or int(offer["amount"]), due)
    return None


def just_stated(tracker: Tracker) -> bool:
    """Whether the bot's last turn stated (or asked again) the terms in `pending_offer`.

    Read from the tracker's events, not the reply text: the pending offer was set in the turn just before
    this message, or a process answer asked it again. A tracker without history (a unit test) trusts the slot.
    """
    return set_last_turn(tracker, "pending_offer")


def set_last_turn(tracker: Tracker, slot: str) -> bool:
    """Whether `slot` was given a value in the bot's turn just before this message (see `just_stated`)."""
    events = tracker.events or []
    users = [i for i, e in enumerate(events) if e.get("event") == "user"]
    if not users:
        return True
    end = users[-1]
    start = users[-2] if len(users) >= 2 else -1
    for e in events[start + 1 : end]:
        if e.get("event") == "slot" and e.get("name") == slot and e.get("value"):
            return True
        if slot == "pending_offer" and e.get("event") == "action" and e.get("name") == "action_answer_process":
            return True
    return False


def stated_terms(offer: dict[str, Any]) -> str:
    """The pending offer as a stable key (idempotency of the write)."""
    return json.dumps(offer, sort_keys=True)


def clear_pending() -> list[EventType]:
    return [SlotSet("pending_offer", None)]


async def offer_deferment(dispatcher: CollectingDispatcher, tracker: Tracker, asked: date | None) -> list[EventType]:
    """A deferment to the day asked, or the latest allowed one (named, and asked again)."""
    if any(c.startswith("hardship_") for c in cues(tracker)):  # "我住院了 这个月能先不还吗": listen first
        dispatcher.utter_message(response="utter_hardship_empathy")
    today = clock().today()

    kind, proposal = await _propose(tracker, lambda sit: negotiation.propose_deferment(sit, today, asked))
    offer = proposal.offer if proposal is not None else None
    if kind == "unverified":
        return answer_then_verify(dispatcher, "deferment")
    if refused(dispatcher, kind):
        return []
    if kind == "not_allowed":
        dispatcher.utter_message(
            response="utter_no_deferment",
            buttons=[
                SEE_INSTALLMENTS,
                TO_A_PERSON,
            ],
        )
        return []
    assert offer is not None
    if kind == "nearest":
        dispatcher.utter_message(response="utter_deferment_nearest", latest=chinese_date(offer.schedule[0].due_date))
    dispatcher.utter_message(response="utter_deferment_offer", buttons=CONFIRM_BUTTONS, **offer_vars(offer))
    return [_pending("deferment", pay_on=offer.schedule[0].due_date.isoformat())]


async def promise_or_arrangement(
    dispatcher: CollectingDispatcher, tracker: Tracker, amount: int | None, due: date | None
) -> list[EventType]:
    """A detail given by a verified holder: a monthly figure sizes a plan ("一个月能还1200"); "先还500，剩下的
    10号还清" is two promises; anything else is one promise."""
    said = cues(tracker)
    monthly = monthly_said(tracker)
    if monthly and "per_month" in said:
        return await offer_for_monthly(dispatcher, tracker, *monthly)
    days = dates(tracker)
    if "the_rest" in said and days:
        if amount and (len(days) >= 2 or "first_part" in said or "pay_at_once" in said):
            first_due = days[0] if len(days) >= 2 else clock().today()
            return await propose_parts(dispatcher, tracker, amount, first_due, days[-1])
        return await propose_parts(dispatcher, tracker, None, None, days[-1])
    return await propose_promise(dispatcher, tracker, amount, due)


def pays_at_once(tracker: Tracker) -> bool:
    """ "马上还" / "今晚还": a promise for today."""
    return "pay_at_once" in cues(tracker)


async def propose_promise(
    dispatcher: CollectingDispatcher, tracker: Tracker, amount: int | None, due: date | None
) -> list[EventType]:
    waiting = (pending(tracker) or {}).get("kind")
    if amount and due is None and waiting == "personalized":
        # The holder answered "how much a month can you pay?": size the plan to it.
        return await offer_for_monthly(dispatcher, tracker, amount)
    today = clock().today()
    if due is None and pays_at_once(tracker):
        due = today

    kind, proposal = await _promise_proposal(tracker.sender_id, today, amount, due)
    if refused(dispatcher, kind):
        return []
    assert proposal is not None
    if kind == "need_date":
        dispatcher.utter_message(response="utter_ask_promise_date", amount=money(proposal.amount))
        return [_pending("promise_date", amount=proposal.amount)]
    if kind == "past":
        dispatcher.utter_message(response="utter_promise_date_past")
        return []
    if kind == "too_late":  # the nearest allowed day, put to the holder as terms to confirm
        assert proposal.latest is not None
        return await _nearest_promise(dispatcher, tracker, proposal.amount, proposal.latest)
    if kind == "too_much":
        dispatcher.utter_message(response="utter_promise_too_much", outstanding=money(proposal.outstanding))
        return []
    assert proposal.due is not None
    dispatcher.utter_message(
        response="utter_promise_summary",
        buttons=CONFIRM_BUTTONS,
        amount=money(proposal.amount),
        date=chinese_date(proposal.due),
    )
    return [_pending("promise", amount=proposal.amount, due=proposal.due.isoformat())]


async def _promise_proposal(
    sender_id: str, today: date, amount: int | None, due: date | None
) -> tuple[str, negotiation.PromiseProposal | None]:
    """The ledger's word on a promise of `amount` by `due` for the verified holder ("unverified" else)."""

    def check(session: Session) -> tuple[str, negotiation.PromiseProposal | None]:
        found = verified_situation(session, sender_id)
        if found is None:
            return "unverified", None
        proposal = negotiation.propose_promise(found[1], today, amount, due)
        return proposal.outcome, proposal

    return await in_transaction(check, readonly=True)


async def _nearest_promise(
    dispatcher: CollectingDispatcher, tracker: Tracker, amount: int | None, latest: date
) -> list[EventType]:
    """A promise date beyond the window: the latest allowed day instead, checked like any promise."""
    today = clock().today()

    kind, proposal = await _promise_proposal(tracker.sender_id, today, amount, latest)
    if refused(dispatcher, kind) or proposal is None or proposal.due is None or kind != "ok":
        dispatcher.utter_message(response="utter_promise_too_late", latest=chinese_date(latest))
        return [_pending("promise_date", amount=amount)] if amount else []
    dispatcher.utter_message(
        response="utter_promise_nearest",
        buttons=CONFIRM_BUTTONS,
        latest=chinese_date(latest),
        amount=money(proposal.amount),
    )
    return [_pending("promise", amount=proposal.amount, due=proposal.due.isoformat())]
