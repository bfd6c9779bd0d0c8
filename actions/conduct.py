"""Conduct: payments already made, hardship, disputes, complaints, stop-contact, refusal, abuse."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.arrangements import monthly_said, offer_for_monthly
from actions.context import (
    ASK_DEFERMENT,
    SEE_INSTALLMENTS,
    TO_A_PERSON,
    chinese_date,
    clock,
    cues,
    in_transaction,
    institution_vars,
    money,
    policy,
    refused,
    waiver_explanation,
)
from actions.handoff import hand_off, tell_decision
from actions.negotiate import ActionOfferInstallment
from actions.offers import _pending, entity
from ledger import accounts, conduct, contact_preferences, conversations, duty, negotiation
from ledger.accounts import audit
from ledger.models import Conversation

# The kinds of hardship, in the order they are told apart (cues hardship_<kind>, bot/keywords.yml).
HARDSHIP_KINDS: tuple[conduct.HardshipKind, ...] = ("illness", "job_loss", "business", "disaster", "family")


def hardship_kind(said: frozenset[str]) -> conduct.HardshipKind:
    return next((kind for kind in HARDSHIP_KINDS if f"hardship_{kind}" in said), "other")


def _phone_is_the_senders(conv: Conversation | None) -> bool:
    """The number is proven (the provider's From, or the number our SMS link went to), not typed."""
    return (
        conv is not None
        and conv.claimed_phone is not None
        and conv.phone_proven
        and (conv.channel == "sms" or conv.conversation_id.startswith("lnk-"))
    )


def _third_party_note(session: Session, sender_id: str, text: str) -> bool:
    """Someone who said they are not the holder: what they ask is only a note for a person
    (a request of kind third_party), never a change, complaint or report on the holder's account."""
    if not conversations.third_party_speaking(conversations.find(session, sender_id)):
        return False
    _request(session, sender_id, "third_party", text)
    return True


def _hand_off(session: Session, sender_id: str, reason: str, priority: int, summary: str) -> duty.HandoffDecision:
    return hand_off(session, sender_id, reason, priority, summary)


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
        text = tracker.latest_message.get("text") or ""
        kind_of_hardship = hardship_kind(cues(tracker))
        pause_days = policy().contact.hardship_pause_days

        def look(session: Session) -> tuple[str, int, str]:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is None:
                return "unverified", 0, ""
            record = conduct.record_hardship(
                session, account_id, kind_of_hardship, text, pause_days, clock(), tracker.sender_id
            )
            until = chinese_date(record.pause_until)
            proposal = negotiation.propose_after_hardship(negotiation.situation(session, account_id, policy(), clock()))
            if proposal.outcome == "personalized":
                audit(session, tracker.sender_id, "plan.offer", account_id, kind="personalized")
            return proposal.outcome, proposal.max_periods, until

        kind, max_periods, until = await in_transaction(look)
        dispatcher.utter_message(response="utter_hardship_empathy")
        if until and pause_days:
            dispatcher.utter_message(response="utter_hardship_recorded", until=until)
        if refused(dispatcher, kind):
            return []
        # The story ended with what they can do ("每个月能还1500", "能分60期吗"): size that, after listening.
        monthly = monthly_said(tracker) if "per_month" in cues(tracker) else None
        if monthly:
            return await offer_for_monthly(dispatcher, tracker, *monthly)
        if entity(tracker, "installments"):
            already = len(dispatcher.messages)
            events = await ActionOfferInstallment().run(dispatcher, tracker, domain)
            # The offer listens first on a hardship cue; here that was just said: never twice in a row.
            dispatcher.messages[already:] = [
                m for m in dispatcher.messages[already:] if m.get("response") != "utter_hardship_empathy"
            ]
            return events
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
                SEE_INSTALLMENTS,
                ASK_DEFERMENT,
                TO_A_PERSON,
            ],
        )
        return []


class ActionDispute(Action):
    """A disputed charge, fraud or identity theft. From the verified holder: hold the account and hand
    to a person. From anyone else: a ticket for a person, nothing changed, and the same words whether
    or not the phone is ours (an identity-theft victim can never verify: a person takes it from here)."""

    def name(self) -> str:
        return "action_dispute"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        theft = "identity_theft" in cues(tracker)

        def record(session: Session) -> tuple[str, duty.HandoffDecision | None]:
            if _third_party_note(session, tracker.sender_id, text):
                return "third_party", None
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is None:  # recorded for a person; the holder is answered, not parked
                _request(session, tracker.sender_id, "identity_theft" if theft else "dispute", text)
                return "unverified", None
            conduct.place_hold(session, account_id, "dispute", text, actor=tracker.sender_id)
            return "holder", _hand_off(session, tracker.sender_id, "dispute", 1, text)

        now = clock().now()
        said_by, decision = await in_transaction(record)
        if said_by == "third_party":
            dispatcher.utter_message(response="utter_third_party_noted")
            return []
        if decision is not None:
            dispatcher.utter_message(response="utter_dispute_recorded")
            tell_decision(dispatcher, decision, now)
        else:
            dispatcher.utter_message(response="utter_request_recorded")
            dispatcher.utter_message(response="utter_dispute_next_steps", **institution_vars())
            if theft:
                dispatcher.utter_message(response="utter_identity_theft_help", **institution_vars())
        return []


def _request(session: Session, sender_id: str, kind: conduct.RequestKind, text: str) -> None:
    """A ticket for a person, from someone not verified: what they said and the number, registered or not."""
    conv = conversations.get_or_create(session, sender_id, "web")
    conduct.open_request(session, kind, sender_id, conv.channel, conv.claimed_phone, text, clock())


class ActionComplaint(Action):
    """Record the complaint with a reference number (routed to the complaints team) and tell it to the
    holder; the conversation goes on with the bot."""

    def name(self) -> str:
        return "action_complaint"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""

        def record(session: Session) -> str:
            if _third_party_note(session, tracker.sender_id, text):  # not the holder's complaint to file
                return ""
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            pk = conduct.account_pk(session, account_id) if account_id else None
            complaint = conduct.record_complaint(session, pk, tracker.sender_id, text, clock(), tracker.sender_id)
            return complaint.reference

        reference = await in_transaction(record)
        if not reference:
            dispatcher.utter_message(response="utter_third_party_noted")
            return []
        dispatcher.utter_message(response="utter_complaint_recorded", reference=reference, buttons=[TO_A_PERSON])
        return []


def _scope(said: frozenset[str]) -> list[tuple[str, str]]:
    """Exactly what the person asked to stop (from the message's cues): their family/work being
    contacted, calls, SMS, or (with no channel named) both calls and SMS to them."""
    changes = []
    family = "family" in said
    if family:
        changes.append(("third_party", "forbidden"))
    if family and "me_as_object" not in said:
        return changes  # 别给我家里打电话: the family, not the holder's own phone
    calls, sms = "calls" in said, "sms" in said
    if "sms_only" in said:
        return [*changes, ("calls", "opted_out")]  # 只发短信: SMS stays, calls stop
    if "calls_only" in said:
        return [*changes, ("sms", "opted_out")]
    if sms:
        changes.append(("sms", "opted_out"))
    if calls:
        changes.append(("calls", "opted_out"))
    if not sms and not calls and not family:
        changes += [("sms", "opted_out"), ("calls", "opted_out")]
    return changes


# The number owner's own channels (no holder is involved): what an SMS sender's request stops.
_NUMBER_CHANNEL = {"sms": "sms", "calls": "call"}
NUMBER_CONFIRMATIONS = {
    frozenset({"sms"}): "utter_stop_contact_number_sms",
    frozenset({"calls"}): "utter_stop_contact_number_calls",
    frozenset({"sms", "calls"}): "utter_stop_contact_number_all",
}


def _confirmation(changes: list[tuple[str, str]]) -> list[str]:
    channels = {c for c, _ in changes}
    out = []
    if {"sms", "calls"} <= channels:
        out.append("utter_stop_contact_all")
    elif "sms" in channels:
        out.append("utter_stop_contact_sms")
    elif "calls" in channels:
        out.append("utter_stop_contact_calls")
    if "third_party" in channels:
        out.append("utter_stop_contact_third_party")
    return out


# How the recorded preferences are read back (ledger/contact_preferences.py holds them).
CHANNEL_NOUNS = {"calls": "电话", "sms": "短信", "wechat": "微信"}
CHANNEL_VERBS = {"calls": "打电话", "sms": "发短信", "wechat": "发微信"}
DAY_WORDS = {"all": "每天", "weekdays": "工作日", "weekends": "周末"}
PLACE_WORDS = {"workplace": "单位", "home": "家里座机", "mobile": "手机"}
ASK_AGAIN = {"which_time": "utter_ask_contact_time", "which_channel": "utter_ask_contact_clarify"}


def contact_clauses(tracker: Tracker) -> list[contact_preferences.Clause]:
    """What the NLU read about channels, times and places (bot/contact_phrases.yml)."""
    out = []
    for item in tracker.latest_message.get("contact") or ():
        try:
            out.append(contact_preferences.Clause.from_json(item))
        except (ValueError, KeyError, TypeError):
            continue
    return out


def describe_preferences(held: dict[str, contact_preferences.ChannelRules]) -> str:
    """What is now recorded, in words: "电话只在每天18:00至22:00；短信照常"."""
    parts = []
    for channel in contact_preferences.CHANNELS:
        rules = held.get(channel)
        if rules is None:
            continue
        verb, noun = CHANNEL_VERBS[channel], CHANNEL_NOUNS[channel]
        if rules.value == "allowed":
            parts.append(f"{noun}照常")
        elif rules.value == "opted_out":
            parts.append(f"今后不再给您{verb}")
        else:
            bits = []
            if rules.windows:
                spans = [w.as_json() for w in rules.windows]
                bits.append("只在" + "、".join(f"{DAY_WORDS[w['days']]}{w['from']}至{w['to']}" for w in spans))
            if rules.forbidden_places:
                bits.append("不打到您" + "、".join(PLACE_WORDS[p] for p in sorted(rules.forbidden_places)))
            parts.append(noun + "，".join(bits))
    return "；".join(parts)


def _detailed(clauses: list[contact_preferences.Clause]) -> bool:
    """More than "stop": a time, a place, or a channel still allowed."""
    return any(c.timed or c.place or c.unclear_time or c.stance != "deny" for c in clauses)


class ActionStopContact(Action):
    """Honour a stop or restrict request at once and say exactly what was recorded.

    The verified holder: their preferences, for every card of their phone, exactly as asked (per
    channel, place and time window; ledger/contact_preferences.py decides), read back; a request
    the rules cannot read for sure is asked about, not guessed. An SMS sender: their own number
    stops receiving what they named (the number's owner decides). Someone who said they are not
    the holder: a note for a person. Anyone else: a ticket for a person, nothing changed, the same
    words whether or not the phone is registered."""

    def name(self) -> str:
        return "action_stop_contact"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        said = cues(tracker)
        clauses = contact_clauses(tracker)
        detailed = _detailed(clauses)
        if detailed:
            window = policy().contact
            asked = contact_preferences.interpret(clauses, window.window_start, window.window_end)
            changes = [("third_party", "forbidden")] if "family" in said else []
        else:
            asked = None
            changes = _scope(said)

        def record(session: Session) -> tuple[str, list[tuple[str, str]], str]:
            if _third_party_note(session, tracker.sender_id, text):
                return "third_party", [], ""
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is not None:
                holder = conduct.cardholder_of(session, account_id)
                if asked is not None and asked.ambiguous:
                    return "ask", [], asked.ambiguous
                for channel, value in changes:
                    conduct.set_preference(session, holder, channel, value, clock(), actor=tracker.sender_id)
                if asked is not None:
                    held = contact_preferences.record(session, holder, asked.changes, clock(), tracker.sender_id)
                    return "holder_detailed", changes, describe_preferences(held)
                return "holder", changes, ""
            conv = conversations.find(session, tracker.sender_id)
            number = [(c, v) for c, v in changes if c in _NUMBER_CHANNEL]
            if conv is not None and _phone_is_the_senders(conv) and conv.channel == "sms" and number:
                assert conv.claimed_phone is not None
                for channel, _ in number:
                    conduct.suppress_number(
                        session, conv.claimed_phone, _NUMBER_CHANNEL[channel], "opt_out", clock(), tracker.sender_id
                    )
                if len(number) < len(changes):  # family contact is the holder's to decide: a person checks
                    _request(session, tracker.sender_id, "stop_contact", text)
                return "number", number, ""
            _request(session, tracker.sender_id, "stop_contact", text)
            return "unverified", [], ""

        who, done, detail = await in_transaction(record)
        if who == "third_party":
            dispatcher.utter_message(response="utter_third_party_noted")
        elif who == "ask":
            dispatcher.utter_message(response=ASK_AGAIN.get(detail, "utter_ask_contact_clarify"))
        elif who == "holder_detailed":
            if detail:
                dispatcher.utter_message(response="utter_contact_preferences_recorded", summary=detail)
            for response in _confirmation([c for c in done if c[0] == "third_party"]):
                dispatcher.utter_message(response=response, **institution_vars())
        elif who == "holder":
            for response in _confirmation(done):
                dispatcher.utter_message(response=response, **institution_vars())
        elif who == "number":
            channels = frozenset(c for c, _ in done)
            dispatcher.utter_message(response=NUMBER_CONFIRMATIONS[channels])
        else:
            dispatcher.utter_message(response="utter_request_recorded")
        return []


class ActionRefusal(Action):
    def name(self) -> str:
        return "action_refusal"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(
            response="utter_refusal",
            buttons=[
                SEE_INSTALLMENTS,
                TO_A_PERSON,
            ],
        )
        return []


# What an upset holder is offered: fewer messages or other times (said in their own words, then
# recorded by action_stop_contact), a person if they want one, a complaint if they want one.
CALM_OFFERS = [TO_A_PERSON, {"title": "我要投诉", "payload": "/complain"}]


class ActionInsult(Action):
    """Stay calm: an apology and a concrete offer, every time; a person only if the holder wants one."""

    def name(self) -> str:
        return "action_insult"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        count = int(tracker.get_slot("abuse_count") or 0) + 1
        dispatcher.utter_message(response="utter_insult")
        dispatcher.utter_message(response="utter_calm_offer", buttons=CALM_OFFERS)
        return [SlotSet("abuse_count", count)]


class ActionVent(Action):
    """Venting ("你们天天发短信烦不烦啊") is not a complaint: apologise, offer what helps, ask."""

    def name(self) -> str:
        return "action_vent"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        dispatcher.utter_message(response="utter_vent_apology")
        dispatcher.utter_message(response="utter_calm_offer", buttons=CALM_OFFERS)
        return []


class ActionFeeWaiver(Action):
    """Waivers are a person's decision: never promised by the bot."""

    def name(self) -> str:
        return "action_fee_waiver"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        def look(session: Session) -> str:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            if account_id is None:
                return "unverified"
            return negotiation.fee_waiver_route(negotiation.situation(session, account_id, policy(), clock()))

        kind = await in_transaction(look, readonly=True)
        explained = waiver_explanation(cues(tracker))
        if explained:
            dispatcher.utter_message(response=explained)
        periods = any(e.get("entity") == "installments" for e in tracker.latest_message.get("entities", []))
        if refused(dispatcher, kind):
            pass
        elif periods:  # "可以停息挂账分60期吗": the waiver is a person's to decide, the periods ours to offer now
            dispatcher.utter_message(response="utter_fee_waiver_review" if kind == "review" else "utter_fee_waiver_no")
            return await ActionOfferInstallment().run(dispatcher, tracker, domain)
        elif kind == "review":
            dispatcher.utter_message(
                response="utter_fee_waiver_review",
                buttons=[
                    {"title": "转人工申请", "payload": "/request_human"},
                    SEE_INSTALLMENTS,
                ],
            )
        else:
            dispatcher.utter_message(
                response="utter_fee_waiver_no",
                buttons=[
                    SEE_INSTALLMENTS,
                    ASK_DEFERMENT,
                ],
            )
        return []


class ActionThirdParty(Action):
    """Not the holder: nothing about the debt, and a verified conversation ends its verification at once.

    A death report or a wrong-number report from someone not verified changes no account: a ticket
    for a person, the same words whether or not the number is ours. A wrong number reported from the
    number itself (its SMS, or our link) stops contact to that number for those accounts until an
    agent has reviewed it."""

    def name(self) -> str:
        return "action_third_party"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        text = tracker.latest_message.get("text") or ""
        said = cues(tracker)
        death = "death" in said
        wrong_number = not death and "wrong_number" in said

        def record(session: Session) -> str:
            account_id = conversations.verified_account_id(session, tracker.sender_id)
            conv = conversations.get_or_create(session, tracker.sender_id, "web")
            already = conversations.third_party_speaking(conv)  # said so before: their words are notes now
            if death and account_id is not None:
                holder_phone = accounts.get_account(session, account_id).cardholder.phone
                for acc in conduct.accounts_by_phone(session, holder_phone):
                    conduct.place_hold(session, acc, "deceased", f"reported in chat: {text[:200]}", tracker.sender_id)
                conversations.mark_third_party(session, conv, "deceased_reported")
                _hand_off(session, tracker.sender_id, "deceased", 1, text)
                return "deceased"
            # The one talking is not (or no longer) the holder: a verification ends, and none follows.
            conversations.mark_third_party(session, conv, "third_party")
            if death:  # recorded for a person; the one reporting it is answered, not parked
                _request(session, tracker.sender_id, "deceased", text)
                return "deceased_unverified"
            if wrong_number:
                _request(session, tracker.sender_id, "wrong_number", text)
                if not already and _phone_is_the_senders(conv):
                    assert conv.claimed_phone is not None
                    for acc in conduct.accounts_by_phone(session, conv.claimed_phone):
                        conduct.suppress_number(
                            session,
                            conv.claimed_phone,
                            "all",
                            "wrong_number",
                            clock(),
                            tracker.sender_id,
                            account_pk=conduct.account_pk(session, acc),
                        )
                return "wrong_number"
            return "third_party"

        kind = await in_transaction(record)
        if kind in ("deceased", "deceased_unverified"):
            said_first = "utter_deceased" if kind == "deceased" else "utter_deceased_unverified"
            dispatcher.utter_message(response=said_first)
            dispatcher.utter_message(response="utter_deceased_next_steps", **institution_vars())
            return []
        if kind == "wrong_number":
            dispatcher.utter_message(response="utter_wrong_person", **institution_vars())
        else:  # family, a friend, a colleague: how the holder reaches us, how family may pay
            dispatcher.utter_message(response="utter_third_party", **institution_vars())
        return []
