"""Conduct: payments already made, hardship, disputes, complaints, stop-contact, refusal, abuse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import chinese_date, clock, in_transaction, institution_vars, money, policy, refused, wait_minutes
from actions.negotiate import _pending
from ledger import accounts, conduct, conversations, negotiation
from ledger.accounts import audit

ABUSE_LIMIT = 3
STOP_CONFIRMATIONS = {
    "sms": "utter_stop_contact_sms",
    "calls": "utter_stop_contact_calls",
    "third_party": "utter_stop_contact_third_party",
}
THIRD_PARTY_WORDS = ("家人", "家里", "父母", "爸", "妈", "老婆", "老公", "单位", "同事", "朋友", "联系人", "领导")


def _hand_off(session: Session, sender_id: str, reason: str, priority: int, summary: str) -> None:
    conv = conversations.get_or_create(session, sender_id, "web")
    conversations.open_ticket(session, conv, reason, priority, summary[:200])


class ActionCheckPayment(Action):
    """ "I already paid": look in the ledger, explain posting times, offer a person."""

    def name(self) -> str:
        return "action_check_payment"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        def look(session: Session) -> tuple[str, dict[str, Any]]:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is None:
                return "unverified", {}
            today = clock().today()
            paid = conduct.recent_payments(session, account_id, today - timedelta(days=30))
            view = accounts.account_view(session, account_id, policy(), clock())
            if not paid:
                return "not_found", {}
            last_day, last_amount = paid[0]
            kind = "found" if view.position.amount_due.total else "found_current"
            return kind, {
                "date": chinese_date(last_day),
                "amount": money(last_amount),
                "amount_due": money(view.position.amount_due.total),
                "outstanding": money(view.position.outstanding.total),
            }

        kind, facts = await in_transaction(look, readonly=True)
        if refused(dispatcher, kind):
            pass
        elif kind in ("found", "found_current"):
            response = "utter_payment_found" if kind == "found" else "utter_payment_found_current"
            dispatcher.utter_message(response=response, **facts)
        else:
            dispatcher.utter_message(
                response="utter_payment_not_found",
                buttons=[{"title": "转人工核实", "payload": "/request_human"}],
                **institution_vars(),
            )
        return []


class ActionHardship(Action):
    """Listen; offer what policy allows; a personalised plan goes to a person for approval."""

    def name(self) -> str:
        return "action_hardship"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        def look(session: Session) -> tuple[str, int]:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is None:
                return "unverified", 0
            sit = negotiation.situation(session, account_id, policy(), clock())
            if sit.on_hold:
                return "on_hold", 0
            if sit.rules.allows("personalized"):
                audit(session, tracker.sender_id, "plan.offer", account_id, kind="personalized")
                return "personalized", sit.rules.personalized_max_periods
            return "options", 0

        kind, max_periods = await in_transaction(look)
        dispatcher.utter_message(response="utter_hardship_empathy")
        if refused(dispatcher, kind):
            return []
        if kind == "personalized":
            dispatcher.utter_message(
                response="utter_offer_personalized",
                max_periods=max_periods,
                buttons=[{"title": "提交申请", "payload": "/affirm"}, {"title": "先不用", "payload": "/deny"}],
            )
            return [_pending("personalized", periods=max_periods)]
        dispatcher.utter_message(
            response="utter_hardship_options",
            buttons=[
                {"title": "看看分期", "payload": "/request_installment"},
                {"title": "申请延期", "payload": "/request_deferment"},
                {"title": "转人工", "payload": "/request_human"},
            ],
        )
        return []


class ActionDispute(Action):
    """A disputed charge, fraud or identity theft: hold the account, record it, hand to a person."""

    def name(self) -> str:
        return "action_dispute"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""

        def record(session: Session) -> None:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is not None:  # unverified: a person verifies first, then holds
                conduct.place_hold(session, account_id, "dispute", text, actor=tracker.sender_id)
            _hand_off(session, tracker.sender_id, "dispute", 1, text)

        await in_transaction(record)
        dispatcher.utter_message(response="utter_dispute_recorded")
        return [ConversationPaused()]


class ActionComplaint(Action):
    """Record the complaint with a reference number, tell it to the holder, route it to a person."""

    def name(self) -> str:
        return "action_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""

        def record(session: Session) -> str:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            pk = conduct.account_pk(session, account_id) if account_id else None
            complaint = conduct.record_complaint(session, pk, tracker.sender_id, text, clock(), tracker.sender_id)
            _hand_off(session, tracker.sender_id, "complaint", 1, f"{complaint.reference} {text}")
            return complaint.reference

        reference = await in_transaction(record)
        dispatcher.utter_message(response="utter_complaint_recorded", reference=reference)
        return [ConversationPaused()]


def _scope(text: str) -> list[tuple[str, str]]:
    """Which contact the holder wants stopped: family/work, calls, or (default) SMS."""
    changes = []
    if any(
        w in text
        for w in ("家人", "家里", "父母", "爸", "妈", "老婆", "老公", "单位", "同事", "朋友", "联系人", "领导")
    ):
        changes.append(("third_party", "forbidden"))
    if any(w in text for w in ("电话", "打给", "打我", "来电")):
        changes.append(("calls", "opted_out"))
    only_sms = "只" in text and "短信" in text
    if not changes or (not only_sms and ("短信" in text or "退订" in text or text.strip().upper() in ("TD", "T"))):
        changes.append(("sms", "opted_out"))
    return changes


class ActionStopContact(Action):
    """Honour a stop or restrict request at once and confirm what changed."""

    def name(self) -> str:
        return "action_stop_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        changes = _scope(tracker.latest_message.get("text") or "")

        def record(session: Session) -> bool:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is not None:
                holders = [conduct.cardholder_of(session, account_id)]
            else:
                conv = conversations.find(session, tracker.sender_id)
                holders = (
                    conduct.cardholders_by_phone(session, conv.claimed_phone) if conv and conv.claimed_phone else []
                )
            for holder in holders:
                for channel, value in changes:
                    conduct.set_preference(session, holder, channel, value, clock(), actor=tracker.sender_id)
            return bool(holders)

        if not await in_transaction(record):
            dispatcher.utter_message(response="utter_stop_contact_need_phone")
            return []
        for channel, _ in changes:
            dispatcher.utter_message(response=STOP_CONFIRMATIONS[channel])
        return []


class ActionRefusal(Action):
    def name(self) -> str:
        return "action_refusal"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(
            response="utter_refusal",
            buttons=[
                {"title": "看看分期", "payload": "/request_installment"},
                {"title": "转人工", "payload": "/request_human"},
            ],
        )
        return []


class ActionInsult(Action):
    """Stay calm; after repeated abuse, a person takes over."""

    def name(self) -> str:
        return "action_insult"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        count = int(tracker.get_slot("abuse_count") or 0) + 1
        if count < ABUSE_LIMIT:
            dispatcher.utter_message(response="utter_insult")
            return [SlotSet("abuse_count", count)]

        def hand_off(session: Session) -> None:
            _hand_off(session, tracker.sender_id, "abuse", 3, tracker.latest_message.get("text") or "")

        await in_transaction(hand_off)
        dispatcher.utter_message(response="utter_handoff", wait=wait_minutes())
        return [SlotSet("abuse_count", 0), ConversationPaused()]


class ActionFeeWaiver(Action):
    """Waivers are a person's decision: never promised by the bot."""

    def name(self) -> str:
        return "action_fee_waiver"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        def look(session: Session) -> str:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is None:
                return "unverified"
            sit = negotiation.situation(session, account_id, policy(), clock())
            return "review" if sit.rules.allows("fee_waiver") else "no"

        kind = await in_transaction(look, readonly=True)
        explained = waiver_explanation(tracker.latest_message.get("text") or "")
        if explained:
            dispatcher.utter_message(response=explained)
        if refused(dispatcher, kind):
            pass
        elif kind == "review":
            dispatcher.utter_message(
                response="utter_fee_waiver_review",
                buttons=[
                    {"title": "转人工申请", "payload": "/request_human"},
                    {"title": "看看分期", "payload": "/request_installment"},
                ],
            )
        else:
            dispatcher.utter_message(
                response="utter_fee_waiver_no",
                buttons=[
                    {"title": "看看分期", "payload": "/request_installment"},
                    {"title": "申请延期", "payload": "/request_deferment"},
                ],
            )
        return []


def waiver_explanation(text: str) -> str | None:
    """停息挂账 and 只还本金 are named asks: say what they are before what can be done."""
    if "停息" in text or "挂账" in text:
        return "utter_explain_stop_interest"
    if "本金" in text and ("只还" in text or "光还" in text or "就还" in text):
        return "utter_explain_principal_only"
    return None


DEATH_WORDS = ("去世", "过世", "离世", "身故", "病故", "死了", "不在人世")


class ActionThirdParty(Action):
    """Not the holder: nothing about the debt. A reported death: condolences, hold, a person follows up."""

    def name(self) -> str:
        return "action_third_party"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        if not any(word in text for word in DEATH_WORDS):
            dispatcher.utter_message(response="utter_wrong_person", **institution_vars())
            return []

        def record(session: Session) -> None:
            # Contact stops at once for the accounts this conversation is tied to (verified, or by the
            # phone of an SMS or link); a person verifies the report before anything else changes.
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            conv = conversations.find(session, tracker.sender_id)
            tied = (
                [account_id]
                if account_id
                else (conduct.accounts_by_phone(session, conv.claimed_phone) if conv and conv.claimed_phone else [])
            )
            for acc in tied:
                conduct.place_hold(session, acc, "deceased", f"reported in chat: {text[:200]}", tracker.sender_id)
            _hand_off(session, tracker.sender_id, "deceased", 1, text)

        await in_transaction(record)
        dispatcher.utter_message(response="utter_deceased")
        return [ConversationPaused()]
