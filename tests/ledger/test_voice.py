"""ledger/voice.py: what a call turn does, and amounts and dates as Mandarin TTS should read them."""

from __future__ import annotations

import re
from datetime import date

import cn2an
from hypothesis import given
from hypothesis import strategies as st

from ledger import voice


def test_amounts_are_spoken_as_a_mandarin_speaker_reads_them() -> None:
    assert voice.spoken_amount(214500) == "两千一百四十五元"
    assert voice.spoken_amount(214550) == "两千一百四十五元五角"
    assert voice.spoken_amount(214505) == "两千一百四十五元零五分"
    assert voice.spoken_amount(1200000) == "一万两千元"
    assert voice.spoken_amount(200) == "两元"
    assert voice.spoken_amount(1000) == "十元"
    assert voice.spoken_amount(100100) == "一千零一元"
    assert voice.spoken_date(date(2026, 12, 30)) == "12月30日"


def test_the_bots_written_amounts_and_dates_become_spoken_ones() -> None:
    said = voice.for_speech("本期最低还款2,145.00元，请在2026-12-30前还款。")
    assert said == "本期最低还款两千一百四十五元，请在12月30日前还款。"
    assert voice.for_speech("还款日是12月30日") == "还款日是12月30日"


@given(st.integers(min_value=0, max_value=10**12))
def test_every_whole_number_reads_back_to_itself(n: int) -> None:
    spoken = voice.spoken_number(n)
    assert cn2an.cn2an(spoken, "normal") == n
    assert "二千" not in spoken and "二万" not in spoken[:2] and "十两" not in spoken and not spoken.startswith("一十")


@given(st.integers(min_value=1, max_value=10**10))
def test_every_amount_in_fen_reads_back_to_itself(fen: int) -> None:
    parts = re.fullmatch(r"(?:(.+)元)?零?(?:(.)角)?(?:(.)分)?", voice.spoken_amount(fen))
    assert parts is not None
    yuan, jiao, cents = parts.groups()
    digit = "零一二三四五六七八九".index
    total = (cn2an.cn2an(yuan, "normal") if yuan else 0) * 100
    assert total + (digit(jiao) * 10 if jiao else 0) + (digit(cents) if cents else 0) == fen


def test_silence_or_a_poor_hearing_gets_one_reprompt_then_the_keypad_then_goodbye() -> None:
    first = voice.decide_turn(None, None, None, 0)
    assert first.kind == "reprompt" and first.silences == 1
    second = voice.decide_turn("嗯啊", 0.2, None, first.silences)
    assert second.kind == "keypad_menu"
    assert voice.decide_turn("", None, None, second.silences).kind == "goodbye"
    heard = voice.decide_turn("我想分期", 0.9, None, second.silences)
    assert heard == voice.Turn("bot", "我想分期", 0)


def test_keypad_digits_become_what_the_bot_asked_for() -> None:
    assert voice.decide_turn(None, None, "123X5678".replace("X", "*"), 0, "identity").text == (
        "身份证后四位123X，卡号后四位5678"
    )
    assert voice.decide_turn(None, None, "5678#", 0, "card_last4").text == "卡号后四位5678"
    assert voice.decide_turn(None, None, "0", 0, "identity").text == "转人工"
    # Both facts keyed when the bot last asked for one (or one keyed when it asked for both): still labelled.
    assert voice.keypad_text("123*5678#", "card_last4", {}) == "身份证后四位123X，卡号后四位5678"
    assert voice.keypad_text("1234", "identity", {}) == "身份证后四位1234"
    assert voice.keypad_text("13800000002", "phone", {}) == "手机号13800000002"
    assert voice.keypad_text("3000", None, {}) == "3000"  # verified: a figure is a figure
    assert voice.decide_turn(None, None, "2", 0, None, {"1": "/affirm", "2": "/deny"}).text == "/deny"
    assert voice.expecting_after(["请提供身份证号后四位和信用卡卡号后四位"], verified=False) == "identity"
    assert voice.expecting_after(["还需要您信用卡卡号的后四位。"], verified=False) == "card_last4"
    assert voice.expecting_after(["请提供身份证号后四位"], verified=True) is None
    assert voice.expecting_after(["请提供您在本行登记的手机号码。"], verified=False) == "phone"


def test_quick_replies_become_a_spoken_keypad_menu() -> None:
    text, menu = voice.spoken_menu([{"title": "分6期", "payload": "/a"}, {"title": "分12期", "payload": "/b"}])
    assert text == "按1分6期，按2分12期。" and menu == {"1": "/a", "2": "/b"}
    assert "按0转人工" in voice.keypad_menu_prompt()


def test_an_answering_machine_hears_who_called_and_a_number_only() -> None:
    assert voice.is_machine("machine_end_beep") and not voice.is_machine("human") and not voice.is_machine(None)
    said = voice.machine_message("示例银行", "400-820-8888")
    assert "示例银行" in said and "回电" in said and "元" not in said and "逾期" not in said


def test_call_outcomes() -> None:
    assert voice.call_outcome("completed", "machine_start", True, True, False) == "machine"
    assert voice.call_outcome("no-answer", None, False, False, False) == "no_answer"
    assert voice.call_outcome("completed", "human", False, True, False) == "unverified"
    assert voice.call_outcome("completed", "human", True, True, True) == "promise"
    assert voice.call_outcome("completed", "human", True, False, True) == "refusal"
    assert voice.call_outcome("completed", None, True, False, False) == "right_party"


def test_every_call_opens_with_who_is_calling_and_the_recording() -> None:
    for outbound in (True, False):
        said = voice.opening("示例银行", outbound)
        assert "示例银行" in said and "录音" in said
