"""Voice calls: what one turn of a call should do, and how the bot's words are spoken. Pure functions.

A call is the same conversation as the other channels; these decide only what is particular to a
telephone line: silence and poor recognition (one re-prompt, then a keypad menu, then goodbye),
keypad digits turned into the words the bot expects, who may hear anything at all (an answering
machine hears only who called and a number to call back), and how amounts and dates are written
so Mandarin text-to-speech reads them right ("两千一百四十五元", "12月30日").

Persistence (the call rows, outcomes, KPIs) is in ledger/calls.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from ledger import templates
from ledger.money import FEN_PER_YUAN

LOW_CONFIDENCE = 0.5  # below this, what the recogniser heard is not acted on
PERSON_DIGIT = "0"
PERSON_WORDS = "转人工"
MACHINE_ANSWERS = frozenset({"machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax"})
NOT_ANSWERED = frozenset({"busy", "no-answer", "failed", "canceled"})
# The keypad menu offered after a re-prompt did not help: digit -> what the bot reads.
KEYPAD_MENU: tuple[tuple[str, str, str], ...] = (
    ("1", "查询欠款", "我想查询欠款"),
    ("2", "协商还款", "我想协商还款"),
    (PERSON_DIGIT, "转人工", PERSON_WORDS),
)

TurnKind = Literal["bot", "reprompt", "keypad_menu", "goodbye"]
Expecting = Literal["identity", "id_last4", "card_last4", "phone"]
CallOutcome = Literal["no_answer", "machine", "promise", "refusal", "right_party", "unverified"]


@dataclass(frozen=True)
class Turn:
    """What one answer from the caller becomes: `text` for the bot (kind "bot"), or the channel's own
    re-prompt, keypad menu or goodbye; `silences` is the count of unusable answers so far."""

    kind: TurnKind
    text: str = ""
    silences: int = 0


def keypad_text(digits: str, expecting: Expecting | None, menu: dict[str, str]) -> str:
    """Keypad digits as the words the bot expects: identity digits labelled as the bot asked for
    them ("*" is the X that ends some ID numbers), a menu choice as its payload, 0 as 转人工."""
    digits = digits.strip().rstrip("#")
    if digits == PERSON_DIGIT:
        return PERSON_WORDS
    if digits in menu:
        return menu[digits]
    spoken = digits.replace("*", "X")
    if expecting is None:  # verified, or the bot asked for nothing to key: a figure, a date, a choice
        return spoken
    if len(spoken) == 8:  # both identity facts at once, whichever the bot asked for last
        return f"身份证后四位{spoken[:4]}，卡号后四位{spoken[4:]}"
    if len(spoken) == 4:  # one of them: the one asked for, ID first when both were
        return f"卡号后四位{spoken}" if expecting == "card_last4" else f"身份证后四位{spoken}"
    if len(spoken) == 11 and spoken.isdigit():
        return f"手机号{spoken}"
    return spoken


def decide_turn(
    speech: str | None,
    confidence: float | None,
    digits: str | None,
    silences: int,
    expecting: Expecting | None = None,
    menu: dict[str, str] | None = None,
) -> Turn:
    """Keypad digits always count; speech counts when heard with enough confidence. Otherwise the
    first time a re-prompt, the second a keypad menu, and after that a polite goodbye."""
    if digits and digits.strip().rstrip("#"):
        return Turn("bot", keypad_text(digits, expecting, menu or {}), 0)
    heard = (speech or "").strip()
    if heard and (confidence is None or confidence >= LOW_CONFIDENCE):
        return Turn("bot", heard, 0)
    silences += 1
    if silences == 1:
        return Turn("reprompt", silences=silences)
    if silences == 2:
        return Turn("keypad_menu", silences=silences)
    return Turn("goodbye", silences=silences)


def expecting_after(replies: list[str], verified: bool) -> Expecting | None:
    """What keypad digits next answer, from what the bot just asked: both identity facts, one of them."""
    if verified:
        return None
    said = "".join(replies)
    asks_id, asks_card = "身份证" in said, "卡号" in said
    if asks_id and asks_card:
        return "identity"
    if asks_card:
        return "card_last4"
    if asks_id:
        return "id_last4"
    if "手机号" in said:
        return "phone"
    return None


def is_machine(answered_by: str | None) -> bool:
    return (answered_by or "").lower() in MACHINE_ANSWERS


def call_outcome(status: str, answered_by: str | None, verified: bool, promised: bool, refused: bool) -> CallOutcome:
    """What a finished call was, for the contact record and the KPIs. Only a verified holder is a
    right-party contact; a promise or a refusal counts only from them."""
    if is_machine(answered_by):
        return "machine"
    if status in NOT_ANSWERED:
        return "no_answer"
    if not verified:
        return "unverified"
    if promised:
        return "promise"
    if refused:
        return "refusal"
    return "right_party"


# --- words for the line ---------------------------------------------------------------------------


def line(name: str, **values: object) -> str:
    """One of the channel's own lines, templates/voice/<name>.j2 (copy is data, not code)."""
    return templates.render("voice", f"{name}.j2", **values)


def opening(short_name: str, outbound: bool) -> str:
    """Who is calling, and that the call may be recorded: the first thing anyone hears."""
    return line("opening", short_name=short_name, outbound=outbound)


def keypad_menu_prompt() -> str:
    return line("keypad_menu", own=True, items=[(d, title) for d, title, _ in KEYPAD_MENU])


def keypad_hint(expecting: Expecting) -> str:
    """What to key for what the bot just asked (identity digits, one of them, a phone)."""
    return line("keypad_hint", expecting=expecting)


def machine_message(short_name: str, hotline: str) -> str:
    """For an answering machine: who called and a number to call back, no name, no account detail."""
    return line("machine", short_name=short_name, hotline=spoken_digits(hotline))


def spoken_menu(buttons: list[dict[str, str]]) -> tuple[str, dict[str, str]]:
    """The bot's quick replies as a keypad menu ("按1…，按2…") and the payload each digit sends.
    Digits from 1; 0 stays 转人工."""
    chosen = list(enumerate(buttons[:9], 1))
    menu = {str(n): b["payload"] for n, b in chosen}
    text = line("keypad_menu", own=False, items=[(str(n), b["title"]) for n, b in chosen]) if chosen else ""
    return text, menu


_DIGIT = "零一二三四五六七八九"
_SMALL_UNITS = ("", "十", "百", "千")
_BIG_UNITS = ("", "万", "亿", "万亿")


def _section(n: int) -> str:
    """0 < n < 10000, as read: 两千零五, 一百一十, 十二."""
    out = ""
    zero = False
    for power in (3, 2, 1, 0):
        d = n // 10**power % 10
        if d == 0:
            zero = bool(out)
            continue
        if zero:
            out += "零"
            zero = False
        word = _DIGIT[d]
        if d == 2 and power >= 2:
            word = "两"
        out += word + _SMALL_UNITS[power]
    return out


def spoken_number(n: int) -> str:
    """A whole number as Mandarin reads it aloud: 2145 -> 两千一百四十五, 10 -> 十, 20000 -> 两万."""
    if n < 0:
        return "负" + spoken_number(-n)
    if n == 0:
        return "零"
    if n == 2:
        return "两"
    sections = []
    k = 0
    while n:
        sections.append((n % 10000, k))
        n //= 10000
        k += 1
    out = ""
    pending_zero = False
    for value, k in reversed(sections):
        if value == 0:
            pending_zero = bool(out)
            continue
        if out and (pending_zero or value < 1000):
            out += "零"
        text = _section(value)
        if value == 2 and k > 0:
            text = "两"
        out += text + _BIG_UNITS[k]
        pending_zero = False
    if out.startswith("一十"):
        out = out[1:]  # 十二, not 一十二
    return out


def spoken_amount(fen: int) -> str:
    """Fen as said aloud: 214500 -> 两千一百四十五元, 214550 -> 两千一百四十五元五角, 5 -> 五分."""
    sign = "负" if fen < 0 else ""
    yuan, rest = divmod(abs(fen), FEN_PER_YUAN)
    jiao, cents = divmod(rest, 10)
    out = f"{spoken_number(yuan)}元" if yuan else ""
    if jiao:
        out += f"{_DIGIT[jiao]}角"
    elif yuan and cents:
        out += "零"
    if cents:
        out += f"{_DIGIT[cents]}分"
    return sign + (out or "零元")


def spoken_date(day: date) -> str:
    """A date as the line says it: 12月30日 (TTS reads month and day numbers correctly)."""
    return f"{day.month}月{day.day}日"


def spoken_digits(text: str) -> str:
    """A number read digit by digit (a hotline): 95588 -> 9 5 5 8 8."""
    return " ".join(ch for ch in text if ch.isdigit() or ch == "-").replace(" - ", "，")


_AMOUNT = re.compile(r"[￥¥]?\s*(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s*元")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def for_speech(text: str) -> str:
    """The bot's written words made right for text-to-speech: amounts in words, ISO dates as 12月30日."""

    def amount(m: re.Match[str]) -> str:
        fen = int(m.group(1).replace(",", "")) * FEN_PER_YUAN + int((m.group(2) or "0").ljust(2, "0"))
        return spoken_amount(fen)

    def iso(m: re.Match[str]) -> str:
        return spoken_date(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))

    return _ISO_DATE.sub(iso, _AMOUNT.sub(amount, text))
