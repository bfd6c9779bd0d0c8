"""General answers that hold for anyone: no account detail, institution named, safe to say before verification."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import in_transaction, institution_vars, policy, wait_minutes
from ledger import conversations

ANSWERS = {
    "ask_consequences": "utter_consequences",
    "ask_repayment_method": "utter_repayment_method",
    "ask_identity_legitimacy": "utter_identity_legitimacy",
    "out_of_scope": "utter_out_of_scope",
}


class ActionAnswer(Action):
    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        dispatcher.utter_message(response=ANSWERS.get(intent, "utter_clarify"), **institution_vars())
        return []


class ActionClarify(Action):
    """Unsure what was meant: a detail that answers a pending question is used; else ask, with buttons."""

    def name(self) -> str:
        return "action_clarify"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        from actions.identity import continue_negotiation
        from actions.negotiate import pending

        details = {e.get("entity") for e in tracker.latest_message.get("entities", [])}
        if pending(tracker) and details & {"date", "amount", "installments"}:
            return await continue_negotiation(dispatcher, tracker, domain)
        if consecutive_clarifications(tracker) + 1 >= policy().handoff.fallbacks_before_handoff:
            text = tracker.latest_message.get("text") or ""

            def hand_off(session: Session) -> None:
                conv = conversations.get_or_create(session, tracker.sender_id, "web")
                conversations.open_ticket(session, conv, "repeated_fallback", 3, text[:200])

            await in_transaction(hand_off)
            dispatcher.utter_message(response="utter_clarify_handoff", wait=wait_minutes())
            return [UserUtteranceReverted(), ConversationPaused()]
        dispatcher.utter_message(response="utter_clarify")
        # Like Rasa's default fallback: forget the unclear message, so the next turn starts clean
        # and the fallback never predicts itself again.
        return [UserUtteranceReverted()]


def consecutive_clarifications(tracker: Tracker) -> int:
    """How many clarifying questions in a row came just before this turn."""
    count = 0
    for event in reversed(tracker.events):
        if event.get("event") != "action":
            continue
        name = event.get("name")
        if name == "action_clarify":
            count += 1
        elif name not in ("action_listen", "action_session_start"):
            break
    return count
