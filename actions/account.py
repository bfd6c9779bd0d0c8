"""Explaining what is owed, straight from the ledger, only to a verified holder."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import chinese_date, clock, cues, in_transaction, money, percent, policy
from ledger import accounts, conversations
from ledger.agreements import PlanState
from ledger.fees import annual_interest_rate
from ledger.models import Plan


def miss_rules() -> dict[str, Any]:
    """What the policy does with a missed instalment: safe to say to anyone, no account detail."""
    rules = policy().agreements
    return {"grace_days": rules.grace_days, "break_at": rules.misses_that_break}


def plan_facts(plan: Plan, state: PlanState) -> dict[str, Any]:
    """What the holder hears about a running plan, every figure from the ledger."""
    return {
        "kind": plan.type,
        "periods": len(state.rows),
        "paid_periods": state.paid_periods,
        "left_periods": state.periods_left,
        "missed_periods": state.missed_periods,
        "remaining": money(state.remaining),
        "arrears": money(state.arrears),
        "next_due_date": chinese_date(state.next_due_date) if state.next_due_date else "",
        "next_due_amount": money(state.next_due_amount),
        **miss_rules(),
    }


def running_plan(session: Session, sender_id: str) -> dict[str, Any] | bool | None:
    """The verified holder's running plan as facts; None when there is none; False when not verified."""
    account_id = conversations.verified_account_id(session, sender_id)
    if account_id is None:
        return False
    view = accounts.account_view(session, account_id, policy(), clock())
    for plan in reversed(view.plans):
        state = view.plan_states.get(plan.plan_id)
        if plan.status == "active" and state is not None and state.status == "active":
            return plan_facts(plan, state)
    return None


def asks_about_a_miss(tracker: Tracker) -> bool:
    """The holder asks what a missed or late instalment means ("这期没还上会怎样")."""
    return "miss" in cues(tracker)


def tell_plan(dispatcher: CollectingDispatcher, facts: dict[str, Any], tracker: Tracker) -> None:
    """The plan's state; and, when the holder asks what a missed instalment means, the policy's answer."""
    if facts["kind"] == "deferment":
        dispatcher.utter_message(response="utter_deferment_status", **facts)
    else:
        dispatcher.utter_message(response="utter_plan_status", **facts)
    if facts["missed_periods"]:
        dispatcher.utter_message(response="utter_plan_missed", **facts)
    if asks_about_a_miss(tracker):
        response = "utter_deferment_miss" if facts["kind"] == "deferment" else "utter_plan_miss_consequence"
        dispatcher.utter_message(response=response, **facts)


class ActionTellDebt(Action):
    def name(self) -> str:
        return "action_tell_debt"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")

        def read(session: Session) -> dict[str, Any] | None:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is None:
                return None
            plan = running_plan(session, tracker.sender_id)
            if isinstance(plan, dict):
                return {"plan": plan}
            view = accounts.account_view(session, account_id, policy(), clock())
            fees = accounts.fee_policy_for(view.account, policy())
            pos = view.position
            return {
                "today": chinese_date(pos.as_of),
                "overdue_days": pos.overdue_days,
                "amount_due": money(pos.amount_due.total),
                "amount_due_fen": pos.amount_due.total,
                "principal": money(pos.amount_due.principal),
                "interest": money(pos.amount_due.interest),
                "late_fee": money(pos.amount_due.late_fee),
                "outstanding": money(pos.outstanding.total),
                "outstanding_fen": pos.outstanding.total,
                "statement_balance": money(view.statement.statement_balance),
                "due_date": chinese_date(view.statement.due_date),
                "daily_rate": percent(fees.daily_interest_rate),
                "annual_rate": percent(annual_interest_rate(fees)),
                "late_fee_rate": percent(fees.late_fee.rate),
            }

        facts = await in_transaction(read, readonly=True)
        if facts is None:
            dispatcher.utter_message(response="utter_need_verification")
            return []
        if "plan" in facts:  # while a plan runs, what is owed is its schedule
            tell_plan(dispatcher, facts["plan"], tracker)
            return []
        if facts["outstanding_fen"] == 0:
            dispatcher.utter_message(response="utter_debt_settled")
        elif facts["overdue_days"] > 0:
            dispatcher.utter_message(response="utter_debt_overdue", **facts)
        else:
            dispatcher.utter_message(response="utter_debt_current", **facts)
        if intent == "ask_fee_detail":
            dispatcher.utter_message(response="utter_fee_explain", **facts)
        return []
