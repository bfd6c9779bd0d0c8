"""The keyword stage decides only what is unambiguous; cues say what a message says beyond its intent."""

from __future__ import annotations

import pytest
import yaml
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from bot.components import KeywordIntentOverride, MessageCues
from bot.keywords import CUES as CUES_KEY
from bot.keywords import KEYWORDS
from bot.normalize import normalize

ROUTER = KeywordIntentOverride(KeywordIntentOverride.get_default_config())


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("TD", "stop_contact"),
        ("td", "stop_contact"),
        ("退订", "stop_contact"),
        ("回T退订", "stop_contact"),
        ("不要再给我打电话", "stop_contact"),
        ("转人工", "request_human"),
        ("人工", "request_human"),
        ("我的卡被盗刷了", "dispute_charge"),
        ("这不是我刷的", "dispute_charge"),
        ("你们打错了", "wrong_person"),
        ("我不是机主", "wrong_person"),
        ("我是他老婆，他欠多少", "wrong_person"),  # a third party, whatever they ask next
        ("他不在，我替他问问", "wrong_person"),
        ("我要投诉", "complain"),
        ("我要打12378", "complain"),
    ],
)
def test_unambiguous_phrases(text: str, intent: str) -> None:
    assert ROUTER.match(normalize(text)) == intent


@pytest.mark.parametrize(
    "text",
    [
        "怎么退订",
        "我欠多少钱",
        "分期手续费多少",
        "我不是不还",
        "人工智能是什么",
        "你好",
        "我老婆帮我还了",
        # A phone number with the regulator's hotline inside it is a verification answer, not a complaint.
        "手机13971237873，身份证后四位5301，卡号后四位2096",
        "卡号后四位1237，手机18612378000",
    ],
)
def test_everything_else_is_left_to_the_classifier(text: str) -> None:
    assert ROUTER.match(normalize(text)) is None


CUES = MessageCues(MessageCues.get_default_config())


def cues_of(text: str) -> list[str]:
    message = Message(data={TEXT: normalize(text)})
    CUES.process([message])
    return message.as_dict(only_output_properties=True)[CUES_KEY]  # what reaches tracker.latest_message


@pytest.mark.parametrize(
    ("text", "present", "absent"),
    [
        ("他已经去世了", {"death", "death_report"}, {"wrong_number"}),
        ("我爸上个月去世了，他的卡怎么办", {"death", "death_report"}, set()),
        ("持卡人去世了欠款谁还", {"death"}, {"death_report"}),
        ("你们打错了，我不认识他", {"wrong_number"}, {"death"}),
        ("这张卡是别人冒名办的", {"identity_theft"}, set()),
        ("别给我家里打电话", {"family", "calls"}, {"me_as_object"}),
        ("别给我和我老婆打电话", {"family", "me_as_object", "calls"}, set()),
        ("td", {"sms"}, {"calls"}),
        ("以后只发短信，别打电话", {"sms_only", "sms", "calls"}, {"calls_only"}),
        ("只打电话，不要短信", {"calls_only"}, {"sms_only"}),
        ("我生病住院了，还不上", {"hardship_illness"}, {"hardship_job_loss"}),
        ("公司裁员我失业了", {"hardship_job_loss"}, set()),
        ("能不能停息挂账", {"stop_interest"}, {"principal_only"}),
        ("我只还本金行不行", {"principal_only"}, set()),
        ("这期没还上会怎样", {"miss"}, set()),
        ("我马上还", {"pay_at_once"}, set()),
        ("你好", set(), {"death", "sms", "calls", "family", "miss", "pay_at_once"}),
    ],
)
def test_cues_say_what_the_message_says_beyond_its_intent(text: str, present: set[str], absent: set[str]) -> None:
    found = set(cues_of(text))
    assert present <= found and not (absent & found), found


def test_every_list_is_once_in_the_keywords_file() -> None:
    """No entry is written twice in one list, and the cue names the actions read all exist."""
    data = yaml.safe_load(KEYWORDS.read_text(encoding="utf-8"))
    for name, spec in data["cues"].items():
        groups = [spec] if isinstance(spec, list) else spec.get("all") or [spec["any"]]
        for group in groups:
            assert len(group) == len(set(group)), name
    read_by_actions = {"death", "death_report", "wrong_number", "identity_theft", "family", "me_as_object", "calls"}
    read_by_actions |= {"sms", "sms_only", "calls_only", "stop_interest", "principal_only", "miss", "pay_at_once"}
    read_by_actions |= {f"hardship_{k}" for k in ("illness", "job_loss", "business", "disaster", "family")}
    read_by_actions |= {"per_month", "the_rest", "first_part"}  # actions/arrangements.py
    assert set(data["cues"]) == read_by_actions
