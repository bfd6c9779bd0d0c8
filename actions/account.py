"""Explaining what is owed, straight from the ledger, only to a verified holder."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import chinese_date, clock, in_transaction, money, percent, policy
from ledger import accounts, conversations


class ActionTellDebt(Action):
    def name(self) -> str:
        return "action_tell_debt"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")

        def read(session: Session) -> dict[str, Any] | None:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is None:
                return None
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
                "annual_rate": percent(fees.daily_interest_rate * 365),
                "late_fee_rate": percent(fees.late_fee.rate),
            }

        facts = await in_transaction(read, readonly=True)
        if facts is None:
            dispatcher.utter_message(response="utter_need_verification")
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
