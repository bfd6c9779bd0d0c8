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


@lru_cache(maxsize=1)
def _t2s() -> OpenCC:
    return OpenCC("t2s")


def _is_emoji(ch: str) -> bool:
    cat = unicodedata.category(ch)
    return cat == "So" or (cat == "Cn" and ord(ch) > 0x2000) or 0x1F000 <= ord(ch) <= 0x1FAFF


def strip_invisible(text: str) -> str:
    """NFKC, then control and format characters (zero-width spaces, joiners, bidi marks) out."""
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub("", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def looks_like_command(text: str) -> bool:
    """Would Rasa's RegexMessageHandler read this as `/intent{entities}` once normalised?"""
    return strip_invisible(text).strip().startswith("/")


def normalize(text: str) -> str:
    """NFKC (full-width digits and letters), traditional -> simplified, emoji and control chars out.

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
    text = _REPEAT_PUNCT.sub(r"\1", text)
    text = _SPACES.sub(" ", text).strip().lstrip("/ ") or "?"
    return SHORTHAND.get(text.lower().strip("~!.?。！？ "), text)
