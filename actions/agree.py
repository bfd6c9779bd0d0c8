"""The holder agrees: what the bot just stated is written to the ledger once, and read back from the row.

"确认" confirms only terms the bot stated in its last turn (`arrangements.just_stated`); otherwise the
bot asks what to confirm. The terms are rebuilt from the ledger before the write, and the reply is made
from the rows written, so a reply never says an agreement is recorded unless the ledger holds it.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.arrangements import fill_requested, just_stated
from actions.context import ASK_DEFERMENT, SEE_INSTALLMENTS, chinese_date, clock, in_transaction, money, percent, policy
from actions.handoff import tell_decision
from actions.offers import pending
from ledger import affordability, conversations, duty, handoff, negotiation
from ledger.errors import Conflict, LedgerError
from ledger.models import Plan, Promise


def plan_read_back(plan: Plan) -> dict[str, Any]:
    """A written plan's terms, from its row: periods, first instalment and date, total cost, APR."""
    rows = sorted(plan.rows, key=lambda r: r.seq)
    return {
        "periods": plan.periods,
        "per_period": money(rows[0].amount),
        "first_due": chinese_date(rows[0].due_date),
        "pay_on": chinese_date(rows[0].due_date),
        "amount": money(rows[0].amount),
        "total_fee": money(plan.total_fee),
        "apr": percent(plan.apr, places=2),
        "total": money(plan.principal + plan.total_fee),
    }


def promises_read_back(promises: list[Promise]) -> dict[str, Any]:
    one = promises[0]
    facts = {"amount": money(one.amount), "date": chinese_date(one.due_date)}
    if len(promises) > 1:
        two = promises[1]
        facts = {
            "first_amount": money(one.amount),
            "first_date": chinese_date(one.due_date),
            "rest_amount": money(two.amount),
            "rest_date": chinese_date(two.due_date),
        }
    return facts


def _write(sender_id: str, offer: dict[str, Any]) -> Any:
    today = clock().today()
    key = f"chat:{sender_id}:{json.dumps(offer, sort_keys=True)}"

    def write(session: Session) -> tuple[str, dict[str, Any]]:
        account_id = conversations.verified_account_id(session, sender_id)
        if account_id is None:
            return "unverified", {}
        if offer["kind"] == "promise":
            promise, _ = negotiation.create_promise(
                session, account_id, offer["amount"], date.fromisoformat(offer["due"]), "chat", key, policy(), clock()
            )
            return "promise", promises_read_back([promise])
        sit = negotiation.situation(session, account_id, policy(), clock())
        if offer["kind"] == "parts":
            first_due = date.fromisoformat(offer["first_due"])
            proposal = affordability.propose_two_part(
                sit, today, offer["first"], first_due, date.fromisoformat(offer["rest_due"])
            )
            if proposal.outcome != "ok":
                raise LedgerError("the arrangement no longer holds")
            parts = [(p.amount, p.due) for p in proposal.parts]
            made = negotiation.create_promises(session, account_id, parts, "chat", key, policy(), clock())
            return "parts", promises_read_back(made)
        plan_offer = negotiation.offer_for(
            sit,
            offer["kind"],
            today,
            periods=offer.get("periods"),
            pay_on=date.fromisoformat(offer["pay_on"]) if offer.get("pay_on") else None,
            monthly=offer.get("monthly"),
        )
        plan, _ = negotiation.create_plan(session, account_id, plan_offer, "chat", key, clock())
        facts = plan_read_back(plan)
        if plan.status == "pending_approval":
            # A person approves it; the holder waits for one only when someone on duty has room.
            conv = conversations.get_or_create(session, sender_id, "web")
            summary = f"个性化分期待审批：{plan.periods}期，本金{money(plan.principal)}"
            decision = handoff.request_person(session, conv, "plan_approval", 2, summary, policy(), clock().now())
            return "pending", {**facts, "decision": decision}
        return offer["kind"], facts

    return write


RESPONSES = {
    "promise": "utter_promise_recorded",
    "parts": "utter_parts_recorded",
    "installment": "utter_installment_created",
    "deferment": "utter_deferment_created",
    "pending": "utter_personalized_submitted",
    "unverified": "utter_need_verification",
}


class ActionConfirm(Action):
    """The holder agreed: write what was just offered (rebuilt from the ledger) once, and read it back."""

    def name(self) -> str:
        return "action_confirm"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        offer = pending(tracker)
        if offer and any(
            e.get("entity") in ("date", "amount", "installments") for e in tracker.latest_message.get("entities", [])
        ):
            # "好的，20天后" / "行，那就分24期": yes to changed terms, so state those and ask again
            filled = await fill_requested(dispatcher, tracker, domain)
            if filled is not None:
                return filled
        if offer and offer["kind"] == "promise_date":  # the day is still missing: ask it again
            dispatcher.utter_message(response="utter_ask_promise_date", amount=money(int(offer["amount"])))
            return []
        if not offer or not just_stated(tracker):
            dispatcher.utter_message(response="utter_confirm_what", buttons=[SEE_INSTALLMENTS, ASK_DEFERMENT])
            return [SlotSet("pending_offer", None)] if offer else []
        try:
            kind, facts = await in_transaction(_write(tracker.sender_id, offer))
        except Conflict:
            dispatcher.utter_message(response="utter_plan_exists")
            return [SlotSet("pending_offer", None)]
        except LedgerError:
            dispatcher.utter_message(response="utter_offer_expired")
            return [SlotSet("pending_offer", None)]
        decision: duty.HandoffDecision | None = facts.pop("decision", None)
        dispatcher.utter_message(response=RESPONSES[kind], **facts)
        events: list[EventType] = [SlotSet("pending_offer", None)]
        if decision is not None and decision.kind == "parked":
            events.append(ConversationPaused())
        elif decision is not None:  # nobody on duty with room: when a person will look, and the bot serves on
            tell_decision(dispatcher, decision, clock().now())
        return events
