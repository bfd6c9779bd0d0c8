"""General answers that hold for anyone: no account detail, institution named, safe to say before verification."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, UserUtteranceReverted
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.context import clock, cues, in_transaction, institution_vars, money, policy, refused
from ledger import conversations, negotiation
from ledger.errors import LedgerError

ANSWERS = {
    "ask_consequences": "utter_consequences",
    "ask_repayment_method": "utter_repayment_method",
    "ask_identity_legitimacy": "utter_identity_legitimacy",
    "out_of_scope": "utter_out_of_scope",
}


def policy_vars() -> dict[str, str]:
    """What knowledge-base answers quote from policy.yml rather than leave to "以本行规定为准"."""
    waived = policy().agreements.early_payoff_unearned_fees == "waived"
    fees = policy().fees
    return {
        "early_payoff_fees": "不再收取" if waived else "仍需支付",
        "statement_grace_days": str(fees.grace_days),
        "tolerance": money(fees.tolerance_fen),
    }


def last_response(tracker: Tracker) -> str:
    """The response name of the bot's last message before this turn ("" when none or not a response)."""
    for event in reversed(tracker.events):
        if event.get("event") == "bot":
            return str((event.get("metadata") or {}).get("utter_action") or "")
        if event.get("event") == "user":
            continue
    return ""


def topic_ranking(tracker: Tracker) -> list[tuple[str, float]]:
    """The knowledge-base topics the selector ranked for the latest message, best first."""
    selector = (tracker.latest_message.get("response_selector") or {}).get("faq") or {}
    ranked = []
    for row in selector.get("ranking") or []:
        key = str(row.get("intent_response_key") or "")
        if key.startswith("faq/"):
            ranked.append((key.split("/", 1)[1], float(row.get("confidence") or 0.0)))
    return ranked


# A follow-up whose best answer was just given gets the next topic the selector saw in it, when it saw
# one clearly enough; else the holder is told that was the whole answer and offered where to go next.
FOLLOW_UP_MIN_CONFIDENCE = 0.1


def not_again(tracker: Tracker, response: str) -> str:
    """`response`, unless it is the one just sent: then a more specific topic, or utter_answered_again."""
    if response != last_response(tracker):
        return response
    for topic, confidence in topic_ranking(tracker):
        needs_context = topic in ACCOUNT_TOPICS or topic.startswith("documents")
        if f"utter_faq/{topic}" != response and confidence >= FOLLOW_UP_MIN_CONFIDENCE and not needs_context:
            return f"utter_faq/{topic}"
    return "utter_answered_again"


# Which documents a request needs depends on the request: "那我需要准备什么材料" after a hardship
# story is about a hardship plan, after a disputed charge about the dispute.
DOCUMENTS_BY_INTENT = {
    "hardship": "documents_hardship",
    "request_installment": "documents_hardship",
    "request_deferment": "documents_hardship",
    "request_fee_waiver": "documents_hardship",
    "dispute_charge": "documents_dispute",
}


def documents_topic(tracker: Tracker) -> str:
    """The documents answer for what this conversation has been about (the generic one when unclear)."""
    for event in reversed(tracker.events):
        if event.get("event") != "user":
            continue
        parse = event.get("parse_data") or {}
        if "death_report" in (parse.get("cues") or []):
            return "documents_death"
        name = (parse.get("intent") or {}).get("name") or ""
        if name in DOCUMENTS_BY_INTENT:
            return DOCUMENTS_BY_INTENT[name]
    return "documents"


# A general answer gives way to a knowledge-base topic when the classifier also read the message as a
# process question and the topic picker is sure of its topic.
PROCESS_QUESTION_MIN = 0.2
TOPIC_MIN = 0.5


def also_a_process_question(tracker: Tracker) -> str | None:
    """The knowledge-base topic of a message the classifier half read as a process question, if any."""
    ranking = tracker.latest_message.get("intent_ranking") or []
    faq_confidence = max((float(r.get("confidence") or 0) for r in ranking if r.get("name") == "faq"), default=0.0)
    ranked = topic_ranking(tracker)
    if faq_confidence < PROCESS_QUESTION_MIN or not ranked or ranked[0][1] < TOPIC_MIN:
        return None
    topic = ranked[0][0]
    return None if topic in ACCOUNT_TOPICS or topic.startswith("documents") else topic


class ActionAnswer(Action):
    def name(self) -> str:
        return "action_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        intent = (tracker.latest_message.get("intent") or {}).get("name") or ""
        response = ANSWERS.get(intent, "utter_clarify")
        topic = also_a_process_question(tracker)
        if intent in ("ask_identity_legitimacy", "out_of_scope") and topic:
            # "那你们官方电话是多少" wants the number, "什么事？" (to our SMS) who we are and why we wrote.
            response = f"utter_faq/{topic}"
        dispatcher.utter_message(response=not_again(tracker, response), **institution_vars(), **policy_vars())
        return []


# Process questions about the cost of a plan: asked while an installment offer waits for a yes or no,
# they are answered with that offer's own figures, and the offer is asked again.
PLAN_COST_TOPICS = {"installment_apr", "installment_fee"}


# Process questions whose real answer is the holder's own offers, once we know who is asking.
ACCOUNT_TOPICS = {"can_i_installment", "max_periods"}


async def _verified(sender_id: str) -> bool:
    def look(session: Session) -> bool:
        return conversations.verified_account_id(session, sender_id) is not None

    return await in_transaction(look, readonly=True)


def faq_topic(tracker: Tracker) -> str | None:
    """The knowledge-base topic Rasa's ResponseSelector chose for the latest message, if any."""
    selector = (tracker.latest_message.get("response_selector") or {}).get("faq") or {}
    key = (selector.get("response") or {}).get("intent_response_key") or ""
    return key.split("/", 1)[1] if key.startswith("faq/") else None


class ActionAnswerProcess(Action):
    """A process question (faq/<topic> or ask_plan_terms) answered without leaving a pending offer behind."""

    def name(self) -> str:
        return "action_answer_process"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        from actions.conduct import ActionThirdParty
        from actions.negotiate import ActionOfferInstallment
        from actions.offers import CONFIRM_BUTTONS, offer_vars, pending

        intent = (tracker.latest_message.get("intent") or {}).get("name")
        topic = faq_topic(tracker)
        offer = pending(tracker)
        asks_cost = intent == "ask_plan_terms" or topic in PLAN_COST_TOPICS
        if offer and offer.get("kind") == "installment" and asks_cost:
            periods = int(offer.get("periods") or 0)

            def rebuild(session: Session) -> tuple[str, Any]:
                account_id = conversations.verified_account_id(session, tracker.sender_id)
                if account_id is None:
                    return "unverified", None
                sit = negotiation.situation(session, account_id, policy(), clock())
                try:
                    return "offer", negotiation.offer_for(sit, "installment", clock().today(), periods=periods)
                except LedgerError:
                    return "gone", None

            kind, rebuilt = await in_transaction(rebuild, readonly=True)
            if refused(dispatcher, kind):
                return []
            if rebuilt is not None:
                dispatcher.utter_message(
                    response="utter_offer_rate_again", buttons=CONFIRM_BUTTONS, **offer_vars(rebuilt)
                )
                return []
        if intent == "ask_plan_terms":
            return await ActionOfferInstallment().run(dispatcher, tracker, domain)
        if topic is None:
            dispatcher.utter_message(response="utter_clarify")
            return []
        if topic in ACCOUNT_TOPICS and await _verified(tracker.sender_id):
            # "我还能分期吗" from a verified holder: the answer is the offers themselves.
            return await ActionOfferInstallment().run(dispatcher, tracker, domain)
        if topic == "deceased_heirs" and "death_report" in cues(tracker):
            # A death reported while asking what heirs owe: the answer (utter_deceased says it), a hold, a person.
            return await ActionThirdParty().run(dispatcher, tracker, domain)
        if topic == "documents":
            topic = documents_topic(tracker)
        response = not_again(tracker, f"utter_faq/{topic}")
        dispatcher.utter_message(response=response, **institution_vars(), **policy_vars())
        if offer:
            dispatcher.utter_message(response="utter_offer_still_open", buttons=CONFIRM_BUTTONS)
        return []


class ActionClarify(Action):
    """Unsure what was meant: a detail that answers a pending question is used; else ask, with buttons."""

    def name(self) -> str:
        return "action_clarify"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]) -> list[EventType]:
        from actions.identity import continue_negotiation
        from actions.offers import pending

        details = {e.get("entity") for e in tracker.latest_message.get("entities", [])}
        if pending(tracker) and details & {"date", "amount", "installments"}:
            return await continue_negotiation(dispatcher, tracker, domain)
        if "installments" in details:  # a long story that names a period count ("…能不能停息挂账分60期")
            from actions.negotiate import ActionOfferInstallment

            return await ActionOfferInstallment().run(dispatcher, tracker, domain)
        if consecutive_clarifications(tracker) + 1 >= policy().handoff.fallbacks_before_handoff:
            from actions.handoff import hand_off, tell_decision

            text = tracker.latest_message.get("text") or ""
            now = clock().now()
            # Asked like any other handoff: parked only when someone on duty has room; otherwise the
            # holder hears when a person replies, may leave a callback, and the bot keeps serving.
            decision = await in_transaction(lambda s: hand_off(s, tracker.sender_id, "repeated_fallback", 3, text))
            dispatcher.utter_message(response="utter_clarify_handoff")
            tell_decision(dispatcher, decision, now)
            return [UserUtteranceReverted()]
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
