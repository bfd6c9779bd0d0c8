"""Negotiation: offers the policy allows, a summary to confirm, then the ledger is written.

The offer logic is deterministic (ledger/); this module only phrases it. What was offered
is kept in the `pending_offer` slot and rebuilt from the ledger when the holder agrees,
so the amounts written are the ledger's, never the slot's.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.account import asks_about_a_miss, miss_rules, running_plan, tell_plan
from actions.arrangements import (
    fill_requested,
    monthly_said,
    offer_deferment,
    offer_for_monthly,
    offer_for_periods,
    promise_or_arrangement,
)
from actions.context import (
    ASK_DEFERMENT,
    SEE_INSTALLMENTS,
    TO_A_PERSON,
    answer_then_verify,
    clock,
    cues,
    in_transaction,
    policy,
    refused,
    render,
    waiver_explanation,
)
from actions.offers import (
    CONFIRM_BUTTONS,
    _pending,
    entity,
    entity_amount,
    entity_date,
    offer_vars,
    pending,
    verified_situation,
)
from ledger import negotiation
from ledger.accounts import audit


class ActionOfferInstallment(Action):
    """Installments the bucket allows, each with per-period amount, total fee and annualised rate."""

    def name(self) -> str:
        return "action_offer_installment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        explained = waiver_explanation(cues(tracker))
        if explained and intent != "request_fee_waiver":  # "能不能停息挂账分60期": what it is, then the plan
            dispatcher.utter_message(response=explained)
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
        if kind == "unverified":
            return answer_then_verify(dispatcher, "installment")
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


class ActionPromiseToPay(Action):
    """Summarise the promise (amount and date resolved relative to today) and ask to confirm."""

    def name(self) -> str:
        return "action_promise_to_pay"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        filled = await fill_requested(dispatcher, tracker, domain)
        if filled is not None:
            return filled
        return await promise_or_arrangement(dispatcher, tracker, entity_amount(tracker), entity_date(tracker))


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
