"""Greeting and identity verification: nothing about the account before all three facts match."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import WANTED_AFTER_VERIFYING, clock, in_transaction, institution_vars, log, policy
from actions.handoff import tell_decision
from ledger import conversations, duty, handoff
from ledger.conversations import MAX_VERIFY_FAILURES


def _entity_values(tracker: Tracker, name: str) -> list[str]:
    return [str(e["value"]) for e in tracker.latest_message.get("entities", []) if e.get("entity") == name]


class ActionGreet(Action):
    def name(self) -> str:
        return "action_greet"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        def verified(session: Session) -> bool:
            return conversations.verified_account_id(session, tracker.sender_id) is not None

        if await in_transaction(verified, readonly=True):
            dispatcher.utter_message(response="utter_greet_verified")
        else:
            dispatcher.utter_message(response="utter_greet_unverified", **institution_vars())
        return []


class ActionGreetOutbound(Action):
    """The holder came from our SMS: name the bank, and ask for the rest of the identity check."""

    def name(self) -> str:
        return "action_greet_outbound"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        def channel(session: Session) -> str | None:
            conv = conversations.find(session, tracker.sender_id)
            return conv.channel if conv else None

        on = await in_transaction(channel, readonly=True)
        if on == "voice":  # a call we placed: the call's own opening said who is calling and asked to verify
            return []
        wechat = on == "wechat"  # from a WeChat reminder, not an SMS
        dispatcher.utter_message(
            response="utter_greet_outbound_wechat" if wechat else "utter_greet_outbound", **institution_vars()
        )
        return []


async def _verified(sender_id: str) -> bool:
    return await in_transaction(lambda s: conversations.verified_account_id(s, sender_id) is not None, readonly=True)


class ActionVerifyIdentity(Action):
    def name(self) -> str:
        return "action_verify_identity"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        asked = tracker.get_slot("pending_offer") or tracker.get_slot("asked_for")
        if asked and await _verified(tracker.sender_id):
            # A bare answer to what the bot just asked ("20号", "3000"), not identity digits.
            from actions.arrangements import fill_requested

            filled = await fill_requested(dispatcher, tracker, domain)
            if filled is not None:
                return filled
        identity_given = any(_entity_values(tracker, n) for n in ("phone", "id_last4", "card_last4", "last4"))
        if not identity_given and await in_transaction(
            lambda s: conversations.verified_account_id(s, tracker.sender_id) is not None, readonly=True
        ):
            return await continue_negotiation(dispatcher, tracker, domain)
        phones = _entity_values(tracker, "phone")
        id_last4 = (_entity_values(tracker, "id_last4") or [tracker.get_slot("id_last4")])[0]
        card_last4 = (_entity_values(tracker, "card_last4") or [tracker.get_slot("card_last4")])[0]
        for bare in _entity_values(tracker, "last4"):  # unlabelled: fill what is missing, ID first as asked
            if not id_last4:
                id_last4 = bare
            elif not card_last4:
                card_last4 = bare

        def check(session: Session) -> tuple[str, int, bool, duty.HandoffDecision | None]:
            conv = conversations.get_or_create(session, tracker.sender_id, "web")
            if conversations.third_party_speaking(conv):  # they said they are not the holder
                return "third_party", conv.failed_verifications, True, None
            if phones and conversations.typed_other_phone(conv, phones[0]):
                # The channel proves whose phone this is: a different number is someone else's account.
                conversations.claim_phone(session, conv, phones[0])  # refused, and noted
                return "other_phone", conv.failed_verifications, True, None
            if phones:
                conversations.claim_phone(session, conv, phones[0])
            outcome = conversations.verify(session, conv, id_last4, card_last4, clock())
            has_phone = conv.claimed_phone is not None
            ticket: duty.HandoffDecision | None = None
            locked = outcome.result == "locked" and conv.mode == "bot"
            if locked and conversations.lock_ticket_due(session, conv, clock()):
                # A person looks at it; the holder waits for one only when someone on duty has room.
                summary = f"身份验证失败{outcome.failures}次"
                now = clock().now()
                ticket = handoff.request_person(session, conv, "verification_failed", 2, summary, policy(), now)
            return outcome.result, outcome.failures, has_phone, ticket

        result, failures, has_phone, ticket = await in_transaction(check)
        log.info("verify", extra={"conversation_id": tracker.sender_id, "result": result})
        keep = [SlotSet("id_last4", id_last4), SlotSet("card_last4", card_last4)]
        clear = [SlotSet("id_last4", None), SlotSet("card_last4", None)]
        if result == "verified":
            was_verified = not (phones or id_last4 or card_last4)
            dispatcher.utter_message(response="utter_already_verified" if was_verified else "utter_verified")
            wanted = WANTED_AFTER_VERIFYING.get(tracker.get_slot("wanted") or "")
            if wanted and not was_verified:  # what they asked before verifying, one tap away now
                dispatcher.utter_message(response="utter_continue_wanted", buttons=[wanted[1]])
                return [*clear, SlotSet("wanted", None)]
            return clear
        if result == "third_party":
            dispatcher.utter_message(response="utter_third_party_cannot_verify", **institution_vars())
            return clear
        if result == "other_phone":
            dispatcher.utter_message(response="utter_other_phone_typed", **institution_vars())
            return clear
        if result == "locked" and ticket is not None and ticket.kind == "parked":
            dispatcher.utter_message(response="utter_verify_locked")
            return [*clear, ConversationPaused()]
        if result == "locked" and ticket is not None:  # nobody on duty with room: said so, the bot serves on
            dispatcher.utter_message(response="utter_verify_locked_later")
            tell_decision(dispatcher, ticket, clock().now())
            return clear
        if result == "locked":  # a person was already asked to look at this phone today
            dispatcher.utter_message(response="utter_verify_locked_no_ticket", **institution_vars())
            return clear
        if result == "retry":
            dispatcher.utter_message(response="utter_verify_retry", remaining=MAX_VERIFY_FAILURES - failures)
            return clear
        if not has_phone:
            dispatcher.utter_message(response="utter_ask_phone")
        elif not id_last4 and not card_last4:
            dispatcher.utter_message(response="utter_ask_id_and_card")
        elif not card_last4:
            dispatcher.utter_message(response="utter_ask_card_last4")
        else:
            dispatcher.utter_message(response="utter_ask_id_last4")
        return keep


async def continue_negotiation(
    dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
) -> list[EventType]:
    """A verified holder answered with a detail: what the bot asked for, a period count, a monthly figure,
    or the amount/date of a promise."""
    from actions.arrangements import fill_requested, promise_or_arrangement
    from actions.negotiate import ActionOfferInstallment
    from actions.offers import entity_amount, entity_date, pending

    filled = await fill_requested(dispatcher, tracker, domain)
    if filled is not None:
        return filled
    if _entity_values(tracker, "installments"):
        return await ActionOfferInstallment().run(dispatcher, tracker, domain)
    waiting = pending(tracker) or {}
    amount, due = entity_amount(tracker), entity_date(tracker)
    if amount or due:
        return await promise_or_arrangement(dispatcher, tracker, amount or waiting.get("amount"), due)
    dispatcher.utter_message(response="utter_already_verified")
    return []
