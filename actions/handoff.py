"""Handing a conversation to a person: a ticket, the gateway in human mode, Rasa paused."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import in_transaction, wait_minutes
from ledger import conversations

# Reason and priority (1 = most urgent) by the intent that triggered the handoff.
REASONS = {
    "dispute_charge": ("dispute", 1),
    "complain": ("complaint", 1),
    "hardship": ("hardship", 2),
    "stop_contact": ("stop_contact", 1),
    "request_human": ("requested", 2),
}


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or "request_human"
        reason, priority = REASONS.get(intent, (intent, 3))
        last_text = tracker.latest_message.get("text") or ""

        def hand_off(session: Session) -> None:
            conv = conversations.get_or_create(session, tracker.sender_id, "web")
            conversations.open_ticket(session, conv, reason, priority, last_text[:200])

        await in_transaction(hand_off)
        dispatcher.utter_message(response="utter_handoff", wait=wait_minutes())
        return [ConversationPaused()]
