"""The knowledge-base topic selector: trained, saved, loaded, and read the way Rasa's own is."""

from __future__ import annotations

from pathlib import Path

from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.faq_selector import FaqTopicSelector

EXAMPLES = {
    "faq/jail": ["信用卡逾期会坐牢吗", "欠信用卡不还会被抓吗", "还不上信用卡要判刑吗"],
    "faq/posting_time": ["还款多久到账", "他行转账几天到账", "支付宝还款多久能到"],
    "faq/credit_report": ["逾期会上征信吗", "征信会受影响吗", "逾期多久上征信"],
}


def training_data() -> TrainingData:
    messages = [
        Message(data={"text": text, "intent": "faq", "intent_response_key": key})
        for key, texts in EXAMPLES.items()
        for text in texts
    ]
    messages.append(Message(data={"text": "你好", "intent": "greet"}))  # not a topic: ignored
    return TrainingData(training_examples=messages)


def test_trained_selector_picks_the_topic_after_a_save_and_load(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    resource = Resource("faq_topics")
    context = ExecutionContext(GraphSchema({}), "test")
    selector = FaqTopicSelector.create({}, storage, resource, context)
    selector.train(training_data())

    loaded = FaqTopicSelector.load({}, storage, resource, context)
    [message] = loaded.process([Message(data={"text": "欠信用卡会不会坐牢"})])
    chosen = message.get("response_selector")["faq"]
    assert chosen["response"]["intent_response_key"] == "faq/jail"
    assert chosen["response"]["utter_action"] == "utter_faq/jail"  # what Rasa's retrieval action reads
    assert chosen["ranking"][0]["intent_response_key"] == "faq/jail" and len(chosen["ranking"]) == 3
    assert message.get("response_selector")["all_retrieval_intents"] == ["faq"]


def test_an_untrained_selector_leaves_messages_alone(tmp_path: Path) -> None:
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    selector = FaqTopicSelector.load({}, storage, Resource("nothing"), context)
    [message] = selector.process([Message(data={"text": "逾期会坐牢吗"})])
    assert message.get("response_selector") is None
