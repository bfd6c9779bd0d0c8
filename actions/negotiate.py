"""Negotiation: offers the policy allows, a summary to confirm, then the ledger is written.

The offer logic is deterministic (ledger/); this module only phrases it. What was offered
is kept in the `pending_offer` slot and rebuilt from the ledger when the holder agrees,
so the amounts written are the ledger's, never the slot's.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.account import asks_about_a_miss, miss_rules, running_plan, tell_plan
from actions.context import (
    ASK_DEFERMENT,
    SEE_INSTALLMENTS,
    TO_A_PERSON,
    chinese_date,
    clock,
    cues,
    in_transaction,
    money,
    percent,
    policy,
    refused,
    render,
)
from ledger import conversations, negotiation
from ledger.accounts import audit
from ledger.errors import LedgerError
from ledger.money import yuan_to_fen
from ledger.plans import PlanOffer

CONFIRM_BUTTONS = [{"title": "确认办理", "payload": "/affirm"}, {"title": "再想想", "payload": "/deny"}]


def entity(tracker: Tracker, name: str) -> dict[str, Any] | None:
    return next((e for e in tracker.latest_message.get("entities", []) if e.get("entity") == name), None)


def entity_date(tracker: Tracker) -> date | None:
    ent = entity(tracker, "date")
    iso = ((ent or {}).get("additional_info") or {}).get("iso")
    return date.fromisoformat(iso) if iso else None


def entity_amount(tracker: Tracker) -> int | None:
    ent = entity(tracker, "amount")
    try:
        return yuan_to_fen(Decimal(str(ent["value"])).quantize(Decimal("0.01"))) if ent else None
    except (LedgerError, ArithmeticError):
        return None


def offer_vars(offer: PlanOffer) -> dict[str, Any]:
    return {
        "periods": offer.periods,
        "per_period": money(offer.first_amount),
        "total_fee": money(offer.total_fee),
        "apr": percent(offer.apr, places=2),
        "total": money(offer.total),
        "first_due": chinese_date(offer.schedule[0].due_date),
        "pay_on": chinese_date(offer.schedule[0].due_date),
        "amount": money(offer.principal),
    }


def pending(tracker: Tracker) -> dict[str, Any] | None:
    raw = tracker.get_slot("pending_offer")
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _pending(kind: str, **terms: Any) -> SlotSet:
    return SlotSet("pending_offer", json.dumps({"kind": kind, **terms}))


def verified_situation(session: Session, sender_id: str) -> tuple[str, negotiation.Situation] | None:
    """The verified holder's account id and what negotiation needs to know of it; None when not verified."""
    account_id = conversations.verified_account_id(session, sender_id)
    if account_id is None:
        return None
    return account_id, negotiation.situation(session, account_id, policy(), clock())


class ActionOfferInstallment(Action):
    """Installments the bucket allows, each with per-period amount, total fee and annualised rate."""

    def name(self) -> str:
        return "action_offer_installment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        from actions.arrangements import monthly_said, offer_for_monthly, offer_for_periods

        wanted = entity(tracker, "installments")
        periods = int(wanted["value"]) if wanted else None
        monthly = monthly_said(tracker)
        if periods is None and monthly:
            # "我一个月能还1200左右" / "每个月最多还800": size the offer to it (never a promise).
            return await offer_for_monthly(dispatcher, tracker, *monthly)
        today = clock().today()

        def build(session: Session) -> tuple[str, Any]:
            found = verified_situation(session, tracker.sender_id)
            if found is None:
                return "unverified", None
            running = running_plan(session, tracker.sender_id)
            if isinstance(running, dict):
                return "running", running
            if periods is not None:
                return "periods", None
            account_id, sit = found
            proposal = negotiation.propose_installment(sit, today, periods)
            if proposal.offer is not None:
                kind, n = "installment", proposal.offer.periods
                audit(session, tracker.sender_id, "plan.offer", account_id, kind=kind, periods=n)
            return proposal.outcome, proposal

        text = tracker.latest_message.get("text") or ""
        if periods is None and asks_about_a_miss(tracker):
            # "这期没还上会怎样": a running plan's state and the policy's answer; without a plan, the rule.
            running = await in_transaction(lambda s: running_plan(s, tracker.sender_id), readonly=True)
            if isinstance(running, dict):
                tell_plan(dispatcher, running, tracker)
            else:
                dispatcher.utter_message(response="utter_plan_miss_consequence", **miss_rules())
            return []
        kind, data = await in_transaction(build)
        if refused(dispatcher, kind):
            return []
        if kind == "periods" and periods is not None:  # "分60期": standard, else personalised, else nearest
            if any(c.startswith("hardship_") for c in cues(tracker)):  # "我失业了，能不能分60期": listen first
                dispatcher.utter_message(response="utter_hardship_empathy")
            return await offer_for_periods(dispatcher, tracker, periods)
        if kind == "running":
            intent = (tracker.latest_message.get("intent") or {}).get("name")
            if periods is not None or intent == "request_installment":  # a new plan asked for: one at a time
                dispatcher.utter_message(response="utter_plan_exists")
            tell_plan(dispatcher, data, tracker)
            return []
        proposal: negotiation.InstallmentProposal = data
        if proposal.outcome == "none":
            dispatcher.utter_message(response="utter_no_installment")
            return []
        if proposal.outcome == "options":
            rules = policy().agreements
            text = render(
                "installment_options.j2",
                offers=[offer_vars(o) for o in proposal.offers],
                fee_on_principal=rules.instalment_fee_base == "principal",
                accrual_stops=rules.interest_during_plan == "stop" and rules.late_fees_during_plan == "stop",
            )
            dispatcher.utter_message(
                text=text,
                buttons=[{"title": f"分{o.periods}期", "payload": f"分{o.periods}期"} for o in proposal.offers],
            )
            # the list replaces any single offer; a bare "12" next picks the periods
            return [SlotSet("pending_offer", None), SlotSet("asked_for", "periods")]
        if proposal.outcome == "nearest":
            dispatcher.utter_message(
                response="utter_installment_not_offered",
                requested=proposal.requested,
                allowed="、".join(f"{p}期" for p in proposal.allowed_periods),
            )
        assert proposal.offer is not None
        dispatcher.utter_message(
            response="utter_installment_offer", buttons=CONFIRM_BUTTONS, **offer_vars(proposal.offer)
        )
        return [_pending("installment", periods=proposal.offer.periods)]


class ActionOfferDeferment(Action):
    """A short deferment within the bucket's limit; the latest allowed date when none is asked."""

    def name(self) -> str:
        return "action_offer_deferment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return await offer_deferment(dispatcher, tracker, entity_date(tracker))


async def offer_deferment(dispatcher: CollectingDispatcher, tracker: Tracker, asked: date | None) -> list[EventType]:
    """A deferment to the day asked, or the latest allowed one (named, and asked again)."""
    if any(c.startswith("hardship_") for c in cues(tracker)):  # "我住院了 这个月能先不还吗": listen first
        dispatcher.utter_message(response="utter_hardship_empathy")
    today = clock().today()

    def build(session: Session) -> tuple[str, PlanOffer | None]:
        found = verified_situation(session, tracker.sender_id)
        if found is None:
            return "unverified", None
        account_id, sit = found
        proposal = negotiation.propose_deferment(sit, today, asked)
        if proposal.offer is not None:
            audit(session, tracker.sender_id, "plan.offer", account_id, kind="deferment")
        return proposal.outcome, proposal.offer

    kind, offer = await in_transaction(build)
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


class ActionPromiseToPay(Action):
    """Summarise the promise (amount and date resolved relative to today) and ask to confirm."""

    def name(self) -> str:
        return "action_promise_to_pay"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        from actions.arrangements import fill_requested

        filled = await fill_requested(dispatcher, tracker, domain)
        if filled is not None:
            return filled
        return await promise_or_arrangement(dispatcher, tracker, entity_amount(tracker), entity_date(tracker))


async def promise_or_arrangement(
    dispatcher: CollectingDispatcher, tracker: Tracker, amount: int | None, due: date | None
) -> list[EventType]:
    """A detail given by a verified holder: a monthly figure sizes a plan ("一个月能还1200"); "先还500，剩下的
    10号还清" is two promises; anything else is one promise."""
    from actions.arrangements import dates, monthly_said, offer_for_monthly, propose_parts

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
        from actions.arrangements import offer_for_monthly

        return await offer_for_monthly(dispatcher, tracker, amount)
    today = clock().today()
    if due is None and pays_at_once(tracker):
        due = today

    def check(session: Session) -> tuple[str, negotiation.PromiseProposal | None]:
        found = verified_situation(session, tracker.sender_id)
        if found is None:
            return "unverified", None
        proposal = negotiation.propose_promise(found[1], today, amount, due)
        return proposal.outcome, proposal

    kind, proposal = await in_transaction(check, readonly=True)
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


async def _nearest_promise(
    dispatcher: CollectingDispatcher, tracker: Tracker, amount: int | None, latest: date
) -> list[EventType]:
    """A promise date beyond the window: the latest allowed day instead, checked like any promise."""
    today = clock().today()

    def check(session: Session) -> tuple[str, negotiation.PromiseProposal | None]:
        found = verified_situation(session, tracker.sender_id)
        if found is None:
            return "unverified", None
        proposal = negotiation.propose_promise(found[1], today, amount, latest)
        return proposal.outcome, proposal

    kind, proposal = await in_transaction(check, readonly=True)
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


class ActionDecline(Action):
    """The holder said no: no pressure, name the other ways forward."""

    def name(self) -> str:
        return "action_decline"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        if pending(tracker):
            dispatcher.utter_message(
                response="utter_decline_options",
                buttons=[
                    SEE_INSTALLMENTS,
                    ASK_DEFERMENT,
                    TO_A_PERSON,
                ],
            )
            return [SlotSet("pending_offer", None)]
        dispatcher.utter_message(response="utter_ok_anything_else")
        return []
