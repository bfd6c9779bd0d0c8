"""The Rasa domain keeps to the contract, and responses and actions agree with each other."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
CONTRACT_INTENTS = {
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
CONTRACT_ENTITIES = {"amount", "installments", "date", "card_last4", "id_last4", "phone"}


def _code_and_data() -> str:
    files = [*ROOT.glob("actions/*.py"), *ROOT.glob("data/**/*.yml")]
    return "\n".join(f.read_text(encoding="utf-8") for f in files)


def test_intents_and_entities_are_the_contracts() -> None:
    assert {i for i in DOMAIN["intents"] if not i.startswith("EXTERNAL_")} == CONTRACT_INTENTS
    assert set(DOMAIN["entities"]) >= CONTRACT_ENTITIES


def test_every_intent_has_training_examples() -> None:
    seen = set()
    for f in ROOT.glob("data/nlu/*.yml"):
        for item in yaml.safe_load(f.read_text(encoding="utf-8"))["nlu"]:
            if "intent" in item and len(item["examples"].strip().splitlines()) >= 10:
                seen.add(item["intent"])
    assert seen == CONTRACT_INTENTS  # EXTERNAL_ intents are triggered by the gateway, never typed


def test_responses_sent_by_actions_exist_and_every_response_is_used() -> None:
    responses = set(DOMAIN["responses"])
    text = _code_and_data()
    sent = set(re.findall(r"utter_[a-z0-9_]+", text)) - {"utter_message"}
    assert sent <= responses, sent - responses
    assert responses <= sent, responses - sent


def test_custom_actions_are_declared() -> None:
    code = "\n".join(f.read_text(encoding="utf-8") for f in ROOT.glob("actions/*.py"))
    names = set(re.findall(r'return "(action_[a-z_]+)"', code))
    assert names == set(DOMAIN["actions"])
