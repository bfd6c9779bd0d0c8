"""Mask card, ID and phone numbers, and verification answers, before text is stored, served or logged.

Numbers are found in any spacing a person types them in (`138-0000-0002`, `138 0000 0002`,
`6222  0212 ...`), full-width digits included (`\\d` is any Unicode digit). A verification
answer is four characters after words that ask for one (`身份证后四位3200`, `卡号尾号6200`);
a bare answer (`3200 6200`) is masked by value once the NLU has recognised it (mask_values).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEP = r"[ \t\-\u3000]{0,2}"  # what people put between digits: spaces (doubled too), dashes
_ID_NUMBER = re.compile(rf"(?<![0-9A-Za-z])\d(?:{_SEP}\d){{16}}{_SEP}[\dXx](?![0-9A-Za-z])")  # resident ID, 18
_CARD = re.compile(rf"(?<!\d)\d(?:{_SEP}\d){{12,18}}(?!\d)")  # 13-19 digits
_PHONE = re.compile(rf"(?<!\d)[1１]{_SEP}[3-9３-９](?:{_SEP}\d){{9}}(?!\d)")  # mainland mobile, 11 digits
_ANSWER = re.compile(
    r"(后四位|后4位|末四位|末4位|后四|尾号|尾数|身份证号码?|身份证|证件号码?)"
    r"([\s:：是为的号码]{0,4})"
    r"(\d{3}[\dXxＸｘ])(?![\d.．元])"
)
_FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(ord("0"), ord("9") + 1)}


def _chars(match: re.Match[str]) -> str:
    return re.sub(r"[^\dXx]", "", match.group(0))


def _mask_all(m: re.Match[str]) -> str:
    # Not even the last four: the last four of a card or an ID are what a holder verifies with.
    return "*" * len(_chars(m))


def _mask_phone(m: re.Match[str]) -> str:
    digits = _chars(m)
    return f"{digits[:3]}****{digits[-4:]}"


def mask(text: str) -> str:
    """Keep only what identifies nothing on its own: a phone as 138****5678; of card and ID numbers,
    and of verification answers, nothing."""
    text = _ID_NUMBER.sub(_mask_all, text)
    text = _CARD.sub(_mask_all, text)
    text = _PHONE.sub(_mask_phone, text)
    return _ANSWER.sub(lambda m: m.group(1) + m.group(2) + "****", text)


# A stand-alone group of four that could be a verification answer (the last four of a card or
# an ID number, half- or full-width, an ID's check character X). One pattern for every holder:
# compiling one per answer filled re's cache with each new holder's digits.
_FOUR = re.compile(r"(?<![\d])[\d][\d][\d][\dXxＸｘ](?![\d])")
_HALF = str.maketrans({**{v: k for k, v in _FULLWIDTH.items()}, "x": "X", "Ｘ": "X", "ｘ": "X"})


def mask_values(text: str, values: Iterable[str]) -> str:
    """Mask these verification answers (four characters each) wherever they stand alone in `text`."""
    wanted = {
        v.translate(_HALF) for v in (str(value).strip() for value in values) if re.fullmatch(r"[0-9]{3}[0-9Xx]", v)
    }
    if not wanted:
        return text
    return _FOUR.sub(lambda m: "****" if m.group(0).translate(_HALF) in wanted else m.group(0), text)
