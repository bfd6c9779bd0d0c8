"""Process questions: the knowledge-base answer, and a pending offer asked again instead of dropped."""

from __future__ import annotations

import json
from typing import Any

from rasa_sdk import Tracker

from actions.answers import ActionAnswerProcess
from actions.conduct import ActionFeeWaiver
from actions.negotiate import ActionOfferInstallment
from bot.keywords import cues_in
from tests.actions.test_actions import _settings, run, verified_conversation  # noqa: F401  (autouse fixture)


def faq_tracker(cid: str, text: str, topic: str, slots: dict[str, Any] | None = None) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": "faq", "confidence": 0.9},
        "entities": [],
        "cues": cues_in(text),
        "response_selector": {
            "all_retrieval_intents": ["faq"],
            "faq": {"response": {"intent_response_key": f"faq/{topic}", "utter_action": f"utter_faq/{topic}"}},
        },
    }
    return Tracker(cid, slots or {}, latest, [], False, None, {}, "action_listen")


def intent_tracker(cid: str, text: str, intent: str, slots: dict[str, Any] | None = None) -> Tracker:
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": [], "cues": cues_in(text)}
    return Tracker(cid, slots or {}, latest, [], False, None, {}, "action_listen")


def test_a_process_question_gets_its_topic_answer_without_verification() -> None:
    msgs, events = run(ActionAnswerProcess(), faq_tracker("act-nobody-faq1", "逾期会坐牢吗", "jail"))
    assert [m["response"] for m in msgs] == ["utter_faq/jail"] and events == []
    assert msgs[0]["hotline"] and msgs[0]["institution"]  # the answer's {hotline} and {institution} are filled


def test_the_rate_asked_mid_negotiation_is_that_offers_and_the_offer_is_asked_again(database_url: str) -> None:
    cid, _ = verified_conversation(database_url)
    offered, events = run(
        ActionOfferInstallment(),
        Tracker(
            cid,
            {},
            {
                "text": "分12期",
                "intent": {"name": "request_installment"},
                "entities": [{"entity": "installments", "value": "12"}],
            },
            [],
            False,
            None,
            {},
            "action_listen",
        ),
    )
    slots = {"pending_offer": events[0]["value"]}
    assert json.loads(slots["pending_offer"]) == {"kind": "installment", "periods": 12}

    msgs, events = run(ActionAnswerProcess(), faq_tracker(cid, "这个分期的年化利率是多少", "installment_apr", slots))
    assert [m["response"] for m in msgs] == ["utter_offer_rate_again"]
    assert msgs[0]["periods"] == 12 and msgs[0]["apr"] == offered[0]["apr"] and msgs[0]["buttons"]
    assert events == []  # the offer stays pending: "好的" next confirms it

    msgs, _ = run(ActionAnswerProcess(), intent_tracker(cid, "每期手续费多少", "ask_plan_terms", slots))
    assert [m["response"] for m in msgs] == ["utter_offer_rate_again"]


def test_another_question_mid_negotiation_is_answered_then_the_offer_is_asked_again(database_url: str) -> None:
    cid, _ = verified_conversation(database_url)
    slots = {"pending_offer": json.dumps({"kind": "installment", "periods": 12})}
    msgs, events = run(ActionAnswerProcess(), faq_tracker(cid, "协商分期会上征信吗", "negotiation_credit", slots))
    assert [m["response"] for m in msgs] == ["utter_faq/negotiation_credit", "utter_offer_still_open"]
    assert msgs[1]["buttons"] and events == []


def test_plan_terms_without_an_offer_list_the_offers(database_url: str) -> None:
    cid, _ = verified_conversation(database_url)
    msgs, _ = run(ActionAnswerProcess(), intent_tracker(cid, "分期每个月要还多少", "ask_plan_terms"))
    assert "年化" in msgs[0]["text"] and msgs[0]["buttons"]


def test_stop_interest_is_explained_before_the_waiver_answer() -> None:
    msgs, _ = run(ActionFeeWaiver(), intent_tracker("act-nobody-faq2", "能不能帮我停息挂账", "request_fee_waiver"))
    assert [m["response"] for m in msgs] == ["utter_explain_stop_interest", "utter_need_verification"]
    msgs, _ = run(ActionFeeWaiver(), intent_tracker("act-nobody-faq3", "逾期了只还本金可以吗", "request_fee_waiver"))
    assert msgs[0]["response"] == "utter_explain_principal_only"


def test_a_death_in_the_family_is_recorded_but_a_general_question_is_only_answered() -> None:
    msgs, events = run(
        ActionAnswerProcess(), faq_tracker("act-nobody-faq4", "持卡人去世了欠款要家属还吗", "deceased_heirs")
    )
    assert [m["response"] for m in msgs] == ["utter_faq/deceased_heirs"] and events == []
    msgs, events = run(
        ActionAnswerProcess(), faq_tracker("act-nobody-faq5", "我爸去世了他的信用卡要还吗", "deceased_heirs")
    )
    # Not verified: nothing changes on an account (issue 15); heirs only up to the estate, a person
    # follows, and the one reporting it hears the next steps and documents without being parked (issue 29).
    assert [m["response"] for m in msgs] == ["utter_deceased_unverified", "utter_deceased_next_steps"]
    assert events == []


def test_can_i_have_instalments_is_answered_with_the_offers_once_verified(database_url: str) -> None:
    msgs, _ = run(ActionAnswerProcess(), faq_tracker("act-nobody-faq6", "我还能分期吗", "can_i_installment"))
    assert [m["response"] for m in msgs] == ["utter_faq/can_i_installment"]  # depends on the account: verify first
    cid, _ = verified_conversation(database_url)
    msgs, _ = run(ActionAnswerProcess(), faq_tracker(cid, "我还能分期吗", "can_i_installment"))
    assert "年化利率约" in msgs[0]["text"] and msgs[0]["buttons"]


def test_the_early_payoff_answer_quotes_the_banks_policy() -> None:
    msgs, _ = run(ActionAnswerProcess(), faq_tracker("act-nobody-faq9", "提前还清分期还要手续费吗", "early_payoff"))
    assert msgs[0]["response"] == "utter_faq/early_payoff"
    assert msgs[0]["early_payoff_fees"] == "不再收取"  # policy.yml: agreements.early_payoff_unearned_fees: waived


def test_the_grace_period_answer_quotes_the_banks_grace_days_and_tolerance() -> None:
    msgs, _ = run(ActionAnswerProcess(), faq_tracker("act-nobody-faq10", "过了还款日几天内还算逾期吗", "grace_period"))
    assert msgs[0]["response"] == "utter_faq/grace_period"
    # policy.yml: fees.grace_days 3, fees.tolerance 10.00 (容时容差), not "以本行规定为准"
    assert (msgs[0]["statement_grace_days"], msgs[0]["tolerance"]) == ("3", "10.00元")


def _after(tracker: Tracker, events: list[dict[str, Any]]) -> Tracker:
    return Tracker(tracker.sender_id, {}, tracker.latest_message, events, False, None, {}, "action_listen")


def _ranked(tracker: Tracker, ranking: list[tuple[str, float]]) -> Tracker:
    selector = tracker.latest_message["response_selector"]["faq"]
    selector["ranking"] = [{"intent_response_key": f"faq/{t}", "confidence": c} for t, c in ranking]
    return tracker


def test_the_same_answer_is_never_sent_twice_in_a_row() -> None:
    """Issue 28: "那我现在还清的话 征信上会显示什么" right after the credit answer got it word for word."""
    said = [{"event": "bot", "text": "...", "metadata": {"utter_action": "utter_faq/credit_report"}}]
    follow_up = _ranked(
        faq_tracker("act-nobody-again1", "那我现在还清的话 征信上会显示什么", "credit_report"),
        [("credit_report", 0.6), ("credit_record_duration", 0.3)],
    )
    msgs, _ = run(ActionAnswerProcess(), _after(follow_up, said))
    assert [m["response"] for m in msgs] == ["utter_faq/credit_record_duration"]
    alone = _ranked(faq_tracker("act-nobody-again2", "会上征信吗", "credit_report"), [("credit_report", 0.99)])
    msgs, _ = run(ActionAnswerProcess(), _after(alone, said))
    assert [m["response"] for m in msgs] == ["utter_answered_again"]


def test_documents_follow_what_the_conversation_is_about() -> None:
    """Issue 28: "那我需要准备什么材料" after a hardship story is about a hardship plan."""
    story = [{"event": "user", "text": "我失业了", "parse_data": {"intent": {"name": "hardship"}, "cues": []}}]
    tracker = faq_tracker("act-nobody-docs1", "那我需要准备什么材料", "documents")
    msgs, _ = run(ActionAnswerProcess(), _after(tracker, story))
    assert [m["response"] for m in msgs] == ["utter_faq/documents_hardship"]
    msgs, _ = run(ActionAnswerProcess(), faq_tracker("act-nobody-docs2", "需要什么材料", "documents"))
    assert [m["response"] for m in msgs] == ["utter_faq/documents"]


def test_unclear_three_times_asks_for_a_person_like_any_handoff_and_never_parks_when_nobody_is_there(
    database_url: str,
) -> None:
    """Issue 29: the third unclear message in a row used to park the conversation whoever was on duty;
    with nobody there the holder is told so and the bot keeps serving (nothing paused)."""
    from rasa_sdk.events import UserUtteranceReverted
    from sqlalchemy import update

    from actions.answers import ActionClarify
    from ledger import conversations
    from ledger.db import transaction
    from ledger.models import Agent

    cid, _ = verified_conversation(database_url)
    with transaction(database_url) as s:
        s.execute(update(Agent).values(presence="away"))
    clarified = [{"event": "action", "name": "action_clarify"}, {"event": "action", "name": "action_listen"}] * 2
    unclear = {"text": "啊吧啊吧", "intent": {"name": "nlu_fallback", "confidence": 0.2}, "entities": [], "cues": []}
    msgs, events = run(ActionClarify(), Tracker(cid, {}, unclear, clarified, False, None, {}, "action_listen"))
    said = [m.get("response") for m in msgs]
    assert said[0] == "utter_clarify_handoff"
    assert {"utter_handoff_nobody", "utter_handoff_off_duty"} & set(said)
    assert events == [UserUtteranceReverted()]  # the unclear message forgotten; nothing paused
    with transaction(database_url) as s:
        assert conversations.find(s, cid).mode == "bot"  # type: ignore[union-attr]


def test_a_negotiation_asked_before_verifying_is_answered_then_offered_once_verified(database_url: str) -> None:
    """Issue 28: "信用卡可以协商延期还款吗" before verifying got only "请先核实身份", no answer, and after
    verifying nothing led back to what was asked."""
    from datetime import timedelta

    from actions.identity import ActionVerifyIdentity
    from actions.negotiate import ActionOfferDeferment
    from ledger import accounts
    from ledger.clock import process_clock
    from ledger.db import transaction
    from tests.factories import record

    due = process_clock().today() - timedelta(days=40)
    rec = record(phone="13766665555", statement_date=due - timedelta(days=20), due_date=due)
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    cid = "ask-first-then-verify"
    msgs, events = run(ActionOfferDeferment(), intent_tracker(cid, "信用卡可以协商延期还款吗", "request_deferment"))
    assert [m["response"] for m in msgs] == ["utter_can_defer", "utter_need_verification"]
    assert events == [{"event": "slot", "timestamp": None, "name": "wanted", "value": "deferment"}]

    entities = [
        {"entity": "phone", "value": rec.phone},
        {"entity": "id_last4", "value": rec.id_last4},
        {"entity": "card_last4", "value": rec.card_last4},
    ]
    latest = {"text": "…", "intent": {"name": "inform", "confidence": 0.9}, "entities": entities, "cues": []}
    verify = Tracker(cid, {"wanted": "deferment"}, latest, [], False, None, {}, "action_listen")
    msgs, events = run(ActionVerifyIdentity(), verify)
    said = [m["response"] for m in msgs]
    assert said[0] == "utter_verified" and said[1] == "utter_continue_wanted"
    assert msgs[1]["buttons"][0]["payload"] == "/request_deferment"
    assert {"event": "slot", "timestamp": None, "name": "wanted", "value": None} in events


def test_an_unclear_story_that_names_a_period_count_gets_that_plan(database_url: str) -> None:
    """Issue 28: "我是失业了…能不能停息挂账分60期" fell back (a clarifying question), though an M4 account's
    policy allows a 60-period personalised plan."""
    from actions.answers import ActionClarify

    cid, _ = verified_conversation(database_url, overdue_days=130)
    latest = {
        "text": "我是失业了…能不能停息挂账分60期",
        "intent": {"name": "nlu_fallback", "confidence": 0.4},
        "entities": [{"entity": "installments", "value": "60"}],
        "cues": cues_in("我是失业了…能不能停息挂账分60期"),
    }
    msgs, _ = run(ActionClarify(), Tracker(cid, {}, latest, [], False, None, {}, "action_listen"))
    offers = [m for m in msgs if m.get("response") == "utter_personalized_periods_offer"]
    assert offers and offers[0]["periods"] == 60


def test_a_waiver_request_naming_periods_is_answered_then_offered_those_periods(database_url: str) -> None:
    """ "可以停息挂账分60期吗" answered the waiver and left the 60 periods to the next turn."""
    from actions.conduct import ActionFeeWaiver
    from tests.actions.test_actions import tracker
    from tests.actions.test_arrangements import pending_of

    cid, _ = verified_conversation(database_url, overdue_days=100)  # M4: personalised up to 60 periods
    said = tracker(cid, "可以停息挂账分60期吗", "request_fee_waiver", [{"entity": "installments", "value": "60"}])
    msgs, events = run(ActionFeeWaiver(), said)
    responses = [m["response"] for m in msgs]
    assert responses[0] == "utter_explain_stop_interest"
    assert responses[1] in ("utter_fee_waiver_review", "utter_fee_waiver_no")
    assert responses[-1] == "utter_personalized_periods_offer" and msgs[-1]["periods"] == 60
    assert pending_of(events) == {"kind": "personalized", "periods": 60}
