"""The Rasa domain keeps to the contract, and responses and actions agree with each other."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
PUBLIC_INTENTS = {
    "greet",
    "goodbye",
    "thank",
    "affirm",
    "deny",
    "inform",
    "ask_debt_amount",
    "ask_fee_detail",
    "ask_consequences",
    "ask_repayment_method",
    "ask_plan_terms",
    "request_installment",
    "request_deferment",
    "request_fee_waiver",
    "promise_to_pay",
    "claim_paid",
    "hardship",
    "dispute_charge",
    "request_human",
    "complain",
    "stop_contact",
    "ask_identity_legitimacy",
    "wrong_person",
    "refuse_to_pay",
    "insult",
    "out_of_scope",
}
# Added with issue 29: withdrawing a handoff (算了 不用人工了) and venting, which is not a complaint.
HANDOFF_INTENTS = {"withdraw_handoff", "vent"}
PUBLIC_ENTITIES = {"amount", "installments", "date", "card_last4", "id_last4", "phone"}
FAQ_FILE = ROOT / "data/responses/faq.yml"
FAQ_RESPONSES = yaml.safe_load(FAQ_FILE.read_text(encoding="utf-8"))["responses"]


def _code_and_data() -> str:
    files = [*ROOT.glob("actions/*.py"), *ROOT.glob("data/**/*.yml")]
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def test_intents_and_entities_are_the_contracts() -> None:
    # `faq` is the retrieval intent the contract allows for the process-question knowledge base.
    assert {i for i in DOMAIN["intents"] if not i.startswith("EXTERNAL_")} == PUBLIC_INTENTS | {"faq"} | HANDOFF_INTENTS
    assert set(DOMAIN["entities"]) >= PUBLIC_ENTITIES


def test_every_intent_has_training_examples() -> None:
    seen = set()
    for f in ROOT.glob("data/nlu/*.yml"):
        for item in yaml.safe_load(f.read_text(encoding="utf-8"))["nlu"]:
            if "intent" in item and len(item["examples"].strip().splitlines()) >= 10:
                seen.add(item["intent"])
    seen = {i for i in seen if not i.startswith("faq/")}
    assert seen == PUBLIC_INTENTS | HANDOFF_INTENTS  # EXTERNAL_ intents are triggered by the gateway, never typed


def test_responses_sent_by_actions_exist_and_every_response_is_used() -> None:
    responses = set(DOMAIN["responses"])
    text = _code_and_data()
    # utter_action: the key Rasa puts a sent response's name under in a bot event's metadata
    sent = set(re.findall(r"utter_[a-z0-9_]+", text)) - {"utter_message", "utter_faq", "utter_action"}
    assert sent <= responses, sent - responses
    assert responses <= sent, responses - sent


def test_custom_actions_are_declared() -> None:
    code = "\n".join(f.read_text(encoding="utf-8") for f in ROOT.glob("actions/*.py"))
    names = set(re.findall(r'return "(action_[a-z_]+)"', code))
    assert names == set(DOMAIN["actions"])


def faq_topics_in_training_data() -> dict[str, int]:
    topics: dict[str, int] = {}
    for f in ROOT.glob("data/nlu/*.yml"):
        for item in yaml.safe_load(f.read_text(encoding="utf-8"))["nlu"]:
            if item.get("intent", "").startswith("faq/"):
                topics[item["intent"]] = topics.get(item["intent"], 0) + len(item["examples"].strip().splitlines())
    return topics


def test_the_knowledge_base_has_an_answer_with_a_source_for_every_topic() -> None:
    topics = faq_topics_in_training_data()
    assert len(topics) >= 60
    assert {f"utter_{t}" for t in topics} == set(FAQ_RESPONSES)
    assert all(n >= 4 for n in topics.values()), {t: n for t, n in topics.items() if n < 4}
    lines = FAQ_FILE.read_text(encoding="utf-8").splitlines()
    unsourced = [
        line.strip()
        for i, line in enumerate(lines)
        if line.startswith("  utter_faq/") and "# source:" not in lines[i - 1]
    ]
    assert unsourced == []


def test_knowledge_base_answers_pass_the_gateway_guard_before_verification() -> None:
    from api.guard import check

    blocked = {name: v[0]["text"] for name, v in FAQ_RESPONSES.items() if check(v[0]["text"], verified=False).blocked}
    assert blocked == {}


def test_answers_keep_to_the_facts_cardholders_rely_on() -> None:
    texts = {name: v[0]["text"] for name, v in {**DOMAIN["responses"], **FAQ_RESPONSES}.items()}
    everything = "\n".join(texts.values())
    # The overdue ends when the amount due is paid; the credit record does not become "normal".
    assert "恢复正常" not in everything
    # 征信 records run 5 years from the end of the overdue, never "from settlement".
    assert "自结清之日起" not in everything and "从结清" not in everything
    assert "逾期结束" in texts["utter_consequences"] and "逾期结束" in texts["utter_faq/credit_report"]
    # Paying only the minimum keeps the account current but loses the interest-free period.
    assert "免息期" in texts["utter_faq/min_payment"] and "不算逾期" in texts["utter_faq/min_payment"]
    assert "免息期" in texts["utter_debt_current"]
    # Heirs answer only up to the estate.
    assert "遗产" in texts["utter_faq/deceased_heirs"] and "遗产" in texts["utter_deceased"]
    # The objection deadline and the ban on paying anyone but the bank.
    assert "20日" in texts["utter_faq/credit_objection"]
    assert "个人" in texts["utter_faq/personal_account"] and "免费" in texts["utter_faq/third_party_agents"]
