"""Text normalisation before tokenisation: width, script, emoji, chat shorthand."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from opencc import OpenCC

# Whole-message chat shorthand (only whole messages: "88" inside a sentence may be an amount).
SHORTHAND = {
    "88": "拜拜",
    "886": "拜拜",
    "881": "拜拜",
    "bye": "拜拜",
    "byebye": "拜拜",
    "3q": "谢谢",
    "3x": "谢谢",
    "thx": "谢谢",
    "thanks": "谢谢",
    "thank you": "谢谢",
    "xx": "谢谢",
    "xxl": "谢谢了",
    "ok": "好的",
    "okay": "好的",
    "okk": "好的",
    "hao": "好",
    "hi": "你好",
    "hello": "你好",
    "nh": "你好",
    "td": "TD",
    "t": "TD",
    "n": "不",
    "no": "不",
    "y": "是",
    "yes": "是的",
    "kf": "客服",
    "rg": "人工",
}
# A message of emoji alone still means something; elsewhere emoji are dropped.
EMOJI_WORDS = {
    "👍": "好的",
    "👌": "好的",
    "🙏": "谢谢",
    "👋": "你好",
    "😡": "生气",
    "🤬": "生气",
    "😭": "难过",
    "😢": "难过",
}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u2028-\u202e\ufeff]")
_SPACES = re.compile(r"\s+")
_REPEAT_PUNCT = re.compile(r"([!?！？。，,.~～])\1+")
# Digits read out one by one, as voice typing writes them ("一三九一一一一零零零七", "幺三八"):
# four or more digit words in a row with no unit word (十百千万) among them; three when 幺 (how a
# "1" is read in numbers) says so. "三千五" and "十二月" keep their units and are left to the extractors.
_SPOKEN = "零〇一二三四五六七八九幺两洞"
_SPOKEN_VALUE = str.maketrans(
    {**{c: str(i) for i, c in enumerate("零一二三四五六七八九")}, "〇": "0", "幺": "1", "两": "2", "洞": "0"}
)
_SPOKEN_RUN = re.compile(
    rf"(?<![{_SPOKEN}十百千万亿点])[{_SPOKEN}](?:[ -]?[{_SPOKEN}]){{2,}}(?![{_SPOKEN}十百千万亿点])"
)
# Digits in groups ("139 1111 0007", "139-1111-0007", "1 3 9 ..."): joined when they make a mobile
# number or were typed one by one; "1234 5678" (two last-four answers) stays apart.
_DIGIT_GROUPS = re.compile(r"(?<![\d.])\d+(?:[ -]\d+)+(?![\d.])")


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


@lru_cache(maxsize=1)
def _s2t() -> OpenCC:
    return OpenCC("s2tw")  # 为 -> 為, 核实 -> 核實, as Taiwan and Hong Kong write them


def script_of(text: str) -> str | None:
    """ "traditional" or "simplified" when the message says which (more characters of one script
    than of the other), None when it cannot tell (digits, "好的", characters both scripts share)."""
    t2s, s2t = _t2s().convert(text), _s2t().convert(text)
    traditional = sum(a != b for a, b in zip(text, t2s, strict=False))
    simplified = sum(a != b for a, b in zip(text, s2t, strict=False))
    if traditional > simplified:
        return "traditional"
    if simplified > traditional:
        return "simplified"
    return None


def to_traditional(text: str) -> str:
    """The bot's reply in traditional characters, for a holder who writes them."""
    return str(_s2t().convert(text))


def _is_emoji(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat == "So" or (cat == "Cn" and ord(ch) > 0x2000) or 0x1F000 <= ord(ch) <= 0x1FAFF


def strip_invisible(text: str) -> str:
    """NFKC, then control and format characters (zero-width spaces, joiners, bidi marks) out."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def spoken_digits(text: str) -> str:
    """Digit words read out one by one become digits: "一三九一一一一零零零七" -> "13911110007"."""

    def digits(m: re.Match[str]) -> str:
        run = m.group(0).replace(" ", "").replace("-", "")
        id_end = len(run) == 3 and m.string[m.end() : m.end() + 1] in ("X", "x")  # 身份证后四位一二三X
        if len(run) >= 4 or "幺" in run or "洞" in run or id_end:
            return m.group(0).translate(_SPOKEN_VALUE)  # groups stay apart: joined_digits decides
        return m.group(0)

    return _SPOKEN_RUN.sub(digits, text)


def joined_digits(text: str) -> str:
    """Spaced or dashed digit groups that make a mobile number (or digits typed one by one) joined."""

    def join(m: re.Match[str]) -> str:
        groups = re.split(r"[ -]", m.group(0))
        whole = "".join(groups)
        if re.fullmatch(r"1[3-9]\d{9}", whole) or (len(groups) >= 4 and all(len(g) == 1 for g in groups)):
            return whole
        return m.group(0)

    return _DIGIT_GROUPS.sub(join, text)


def looks_like_command(text: str) -> bool:
    """Would Rasa's RegexMessageHandler read this as `/intent{entities}` once normalised?"""
    return strip_invisible(text).strip().startswith("/")


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters), traditional -> simplified, digits read out or grouped
    as digits, emoji and control chars out.

    The result never starts with "/": RegexMessageHandler runs after this component and would
    otherwise take typed text for an intent with entities (button payloads never come this way:
    the channel parses an offered payload itself).
    """
    text = strip_invisible(text)
    emoji = [ch for ch in text if _is_emoji(ch)]
    text = "".join(" " if _is_emoji(ch) else ch for ch in text)
    if emoji and not text.replace("\ufe0f", "").strip():
        return next((EMOJI_WORDS[ch] for ch in emoji if ch in EMOJI_WORDS), "表情")
    text = text.replace("\ufe0f", "")
    text = _t2s().convert(text)
    text = joined_digits(spoken_digits(text))
    text = _REPEAT_PUNCT.sub(r"\1", text)
    text = _SPACES.sub(" ", text).strip().lstrip("/ ") or "?"
    return SHORTHAND.get(text.lower().strip("~!.?。！？ "), text)
