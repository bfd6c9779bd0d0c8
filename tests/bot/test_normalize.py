"""Normalisation: width, script, emoji, shorthand."""

from __future__ import annotations

import pytest

from bot.normalize import normalize


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("還款ａｐｐ怎麼用", "还款app怎么用"),
        ("１２３４５", "12345"),
        ("我要投诉😡😡", "我要投诉"),
        ("88", "拜拜"),
        ("3Q", "谢谢"),
        ("td", "TD"),
        ("  好的 \t 谢谢  ", "好的 谢谢"),
        ("什么？？？", "什么?"),
        ("a\u200bb", "ab"),
        # digits as people type them
        ("一三九一一一一零零零七", "13911110007"),  # voice typing reads a phone out digit by digit
        ("手机一三八 零零零零 零零零二", "手机13800000002"),
        ("身份证后四位幺三八X", "身份证后四位138X"),
        ("身份证后四位一二三X", "身份证后四位123X"),
        ("卡号后四位两洞幺八", "卡号后四位2018"),
        ("139 1111 0007", "13911110007"),
        ("139-1111-0007", "13911110007"),
        ("1 3 9 1 1 1 1 0 0 0 7", "13911110007"),
        ("１３９ １１１１ ０００７", "13911110007"),
    ],
)
def test_normalize(raw: str, clean: str) -> None:
    assert normalize(raw) == clean


def test_shorthand_only_as_a_whole_message() -> None:
    assert normalize("我还88块") == "我还88块"


def test_a_message_of_emoji_alone_keeps_its_meaning() -> None:
    assert normalize("👍") == "好的"
    assert normalize("🙏🙏") == "谢谢"
    assert normalize("🦄") == "表情"


def test_shorthand_with_trailing_punctuation() -> None:
    assert normalize("886～") == "拜拜"
    assert normalize("thx!") == "谢谢"


@pytest.mark.parametrize("typed", ["/affirm", '\u200b/inform{"id_last4": "0000"}', "／request_human", " \u2060/deny"])
def test_nothing_typed_reaches_the_regex_message_handler_as_a_command(typed: str) -> None:
    """Issue 16, finding 7: RegexMessageHandler runs after this component and unpacks a leading "/"."""
    assert not normalize(typed).startswith("/")


@pytest.mark.parametrize("typed", ["我还三千五", "十二月二十号", "分十二期", "两千块", "1234 5678", "还五百 分6期"])
def test_quantities_and_separate_answers_are_left_alone(typed: str) -> None:
    assert normalize(typed) == typed
