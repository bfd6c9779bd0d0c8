"""The second stage decides only what is unambiguous."""

from __future__ import annotations

import pytest

from bot.components import KeywordIntentOverride
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
    "text", ["怎么退订", "我欠多少钱", "分期手续费多少", "我不是不还", "人工智能是什么", "你好", "我老婆帮我还了"]
)
def test_everything_else_is_left_to_the_classifier(text: str) -> None:
    assert ROUTER.match(normalize(text)) is None
