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
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
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
from ledger.errors import Conflict, LedgerError
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
        wanted = entity(tracker, "installments")
        periods = int(wanted["value"]) if wanted else None
        waiting = (pending(tracker) or {}).get("kind")
        monthly = entity_amount(tracker)
        if periods is None and monthly and waiting == "personalized":
            # "每个月能还2000" after a personalised plan was suggested: size the plan to it.
            return await offer_personalized(dispatcher, tracker, monthly)
        today = clock().today()

        def build(session: Session) -> tuple[str, Any]:
            found = verified_situation(session, tracker.sender_id)
            if found is None:
                return "unverified", None
            running = running_plan(session, tracker.sender_id)
            if isinstance(running, dict):
                return "running", running
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
            return []
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
        asked = entity_date(tracker)
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
            dispatcher.utter_message(
                response="utter_deferment_nearest", latest=chinese_date(offer.schedule[0].due_date)
            )
        dispatcher.utter_message(response="utter_deferment_offer", buttons=CONFIRM_BUTTONS, **offer_vars(offer))
        return [_pending("deferment", pay_on=offer.schedule[0].due_date.isoformat())]


class ActionPromiseToPay(Action):
    """Summarise the promise (amount and date resolved relative to today) and ask to confirm."""

    def name(self) -> str:
        return "action_promise_to_pay"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        return await propose_promise(dispatcher, tracker, entity_amount(tracker), entity_date(tracker))


async def offer_personalized(dispatcher: CollectingDispatcher, tracker: Tracker, monthly: int) -> list[EventType]:
    """A personalised plan from what the holder can pay a month: periods, per-period amount, total cost, APR."""
    today = clock().today()

    def build(session: Session) -> tuple[str, negotiation.PersonalizedProposal | None]:
        found = verified_situation(session, tracker.sender_id)
        if found is None:
            return "unverified", None
        account_id, sit = found
        proposal = negotiation.propose_personalized(sit, today, monthly)
        if proposal.offer is not None:
            audit(session, tracker.sender_id, "plan.offer", account_id, kind="personalized", monthly=monthly)
        return proposal.outcome, proposal

    kind, proposal = await in_transaction(build)
    if refused(dispatcher, kind):
        return []
    assert proposal is not None
    if kind == "not_offered":
        dispatcher.utter_message(response="utter_no_personalized")
        return [SlotSet("pending_offer", None)]
    if kind == "too_little":
        dispatcher.utter_message(
            response="utter_personalized_too_little",
            monthly=money(monthly),
            min_monthly=money(proposal.min_monthly),
            max_periods=proposal.max_periods,
        )
        return []
    assert proposal.offer is not None
    dispatcher.utter_message(
        response="utter_personalized_offer",
        buttons=[{"title": "提交申请", "payload": "/affirm"}, {"title": "先不用", "payload": "/deny"}],
        **offer_vars(proposal.offer),
    )
    return [_pending("personalized", monthly=monthly)]


def pays_at_once(tracker: Tracker) -> bool:
    """ "马上还" / "今晚还": a promise for today."""
    return "pay_at_once" in cues(tracker)


async def propose_promise(
    dispatcher: CollectingDispatcher, tracker: Tracker, amount: int | None, due: date | None
) -> list[EventType]:
    waiting = (pending(tracker) or {}).get("kind")
    if amount and due is None and waiting == "personalized":
        # The holder answered "how much a month can you pay?": size a personalised plan to it.
        return await offer_personalized(dispatcher, tracker, amount)
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
    if kind == "too_late":
        assert proposal.latest is not None
        dispatcher.utter_message(response="utter_promise_too_late", latest=chinese_date(proposal.latest))
        return [_pending("promise_date", amount=proposal.amount)]
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


class ActionConfirm(Action):
    """The holder agreed: write what was offered (rebuilt from the ledger) once, and say what was done."""

    def name(self) -> str:
        return "action_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        offer = pending(tracker)
        if not offer or offer["kind"] == "promise_date":
            dispatcher.utter_message(response="utter_ok_anything_else")
            return []
        today = clock().today()
        key = f"chat:{tracker.sender_id}:{json.dumps(offer, sort_keys=True)}"

        def write(session: Session) -> tuple[str, dict[str, Any]]:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is None:
                return "unverified", {}
            if offer["kind"] == "promise":
                promise, _ = negotiation.create_promise(
                    session,
                    account_id,
                    offer["amount"],
                    date.fromisoformat(offer["due"]),
                    "chat",
                    key,
                    policy(),
                    clock(),
                )
                return "promise", {"amount": money(promise.amount), "date": chinese_date(promise.due_date)}
            sit = negotiation.situation(session, account_id, policy(), clock())
            plan_offer = negotiation.offer_for(
                sit,
                offer["kind"],
                today,
                periods=offer.get("periods"),
                pay_on=date.fromisoformat(offer["pay_on"]) if offer.get("pay_on") else None,
                monthly=offer.get("monthly"),
            )
            plan, _ = negotiation.create_plan(session, account_id, plan_offer, "chat", key, clock())
            if plan.status == "pending_approval":
                conv = conversations.get_or_create(session, tracker.sender_id, "web")
                conversations.open_ticket(
                    session,
                    conv,
                    "plan_approval",
                    2,
                    f"个性化分期待审批：{plan.periods}期，本金{money(plan.principal)}",
                )
                return "pending", offer_vars(plan_offer)
            return offer["kind"], offer_vars(plan_offer)

        try:
            kind, facts = await in_transaction(write)
        except Conflict:
            dispatcher.utter_message(response="utter_plan_exists")
            return [SlotSet("pending_offer", None)]
        except LedgerError:
            dispatcher.utter_message(response="utter_offer_expired")
            return [SlotSet("pending_offer", None)]
        responses = {
            "promise": "utter_promise_recorded",
            "installment": "utter_installment_created",
            "deferment": "utter_deferment_created",
            "pending": "utter_personalized_submitted",
            "unverified": "utter_need_verification",
        }
        dispatcher.utter_message(response=responses[kind], **facts)
        events: list[EventType] = [SlotSet("pending_offer", None)]
        if kind == "pending":
            events.append(ConversationPaused())
        return events


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
