"""Handing a conversation to a person, never into silence.

A ticket for agents every time; the holder waits for a person only when someone on duty has room
(ledger/duty.py decides). Otherwise the holder hears when a person will reply, may choose a
callback time, and the bot keeps serving. The gateway alone keeps the bot quiet while a person
has the conversation, so nothing here pauses Rasa.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import clock, in_transaction, policy
from ledger import conversations, duty, handoff
from ledger.errors import ValidationFailed

# Reason and priority (1 = most urgent) by the intent that triggered the handoff.
REASONS = {
    "dispute_charge": ("dispute", 1),
    "complain": ("complaint", 1),
    "hardship": ("hardship", 2),
    "stop_contact": ("stop_contact", 1),
    "request_human": ("requested", 2),
}
WITHDRAW_BUTTON = {"title": "不用人工了", "payload": "不用人工了"}


def when_text(moment: datetime, now: datetime) -> str:
    """'今天15:00', '明天9:00', '12月30日9:00' as people say it."""
    days = (moment.date() - now.date()).days
    day = "今天" if days == 0 else "明天" if days == 1 else f"{moment.month}月{moment.day}日"
    return f"{day}{moment.hour}:{moment.minute:02d}"


def callback_buttons(slots: tuple[datetime, ...], now: datetime) -> list[dict[str, str]]:
    return [
        {
            "title": f"{when_text(s, now)}回电",
            "payload": '/request_human{"callback_at": "' + s.isoformat() + '"}',
        }
        for s in slots
    ]


def tell_decision(dispatcher: CollectingDispatcher, decision: duty.HandoffDecision, now: datetime) -> None:
    """Say what the handoff became: a place in the queue, or when a person replies and a callback."""
    if decision.kind == "parked":
        dispatcher.utter_message(
            response="utter_handoff",
            position=decision.position,
            wait=decision.wait_minutes,
            buttons=[WITHDRAW_BUTTON],
        )
        return
    buttons = callback_buttons(decision.callback_slots, now)
    if decision.kind == "timed_out":
        if buttons:
            dispatcher.utter_message(response="utter_callback_choose", buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_handoff_nobody")
        return
    if decision.kind == "queue_full":
        dispatcher.utter_message(response="utter_handoff_busy", wait=decision.wait_minutes)
    elif decision.person_from is not None:
        dispatcher.utter_message(response="utter_handoff_off_duty", when=when_text(decision.person_from, now))
    else:
        dispatcher.utter_message(response="utter_handoff_nobody")
    if buttons:  # only to a number we may call
        dispatcher.utter_message(response="utter_callback_offer", buttons=buttons)


def hand_off(session: Session, sender_id: str, reason: str, priority: int, summary: str) -> duty.HandoffDecision:
    """A ticket for agents, parked or not (ledger/handoff.py); the decision to tell the holder."""
    conv = conversations.get_or_create(session, sender_id, "web")
    return handoff.request_person(session, conv, reason, priority, summary[:200], policy(), clock().now())


class ActionHandoff(Action):
    """A person: a ticket (parked or not) and what that means for the holder; with a callback time
    chosen from the offered buttons, that time is kept on the ticket."""

    def name(self) -> str:
        return "action_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        now = clock().now()
        entities = tracker.latest_message.get("entities", [])
        chosen = next((str(e.get("value")) for e in entities if e.get("entity") == "callback_at"), None)
        if chosen and ":" in chosen and "T" not in chosen:  # typed: "明天下午三点打给我" is a day and "15:00"
            day = next((e.get("additional_info", {}).get("iso") for e in entities if e.get("entity") == "date"), None)
            at = duty.typed_callback(now, chosen, date.fromisoformat(day) if day else None)
            chosen = at.isoformat() if at else ""
        if chosen:
            return await leave_callback(dispatcher, tracker.sender_id, chosen, now)
        intent = (tracker.latest_message.get("intent") or {}).get("name") or "request_human"
        reason, priority = REASONS.get(intent, (intent, 3))
        last_text = tracker.latest_message.get("text") or ""
        decision = await in_transaction(lambda s: hand_off(s, tracker.sender_id, reason, priority, last_text))
        tell_decision(dispatcher, decision, now)
        return []


async def leave_callback(
    dispatcher: CollectingDispatcher, sender_id: str, chosen: str, now: datetime
) -> list[EventType]:
    """Keep the chosen callback time (within working hours and contact rules), or offer times again."""
    try:
        at: datetime | None = datetime.fromisoformat(chosen)
    except ValueError:
        at = None

    def keep(session: Session) -> bool:
        if at is None or at.tzinfo is None:
            return False
        conv = conversations.get_or_create(session, sender_id, "web")
        try:
            handoff.leave_callback(session, conv, at, policy(), now)
        except ValidationFailed:
            return False
        return True

    if at is not None and await in_transaction(keep):
        dispatcher.utter_message(response="utter_callback_recorded", when=when_text(at.astimezone(now.tzinfo), now))
    else:
        slots = duty.callback_slots(policy().handoff, policy().contact, now)
        allowed = await in_transaction(
            lambda s: handoff.calls_allowed(s, conversations.get_or_create(s, sender_id, "web")), readonly=True
        )
        if slots and allowed:
            dispatcher.utter_message(response="utter_callback_choose", buttons=callback_buttons(slots, now))
        else:  # we may not call this number: a person answers here instead
            dispatcher.utter_message(response="utter_callback_unavailable")
    return []


class ActionWithdrawHandoff(Action):
    """算了 不用人工了: the waiting ticket ends and the bot goes on where the conversation was."""

    def name(self) -> str:
        return "action_withdraw_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        now = clock().now()
        withdrawn = await in_transaction(lambda s: handoff.withdraw(s, tracker.sender_id, now))
        dispatcher.utter_message(response="utter_handoff_withdrawn" if withdrawn else "utter_handoff_none")
        return []
