"""Mask card, ID and phone numbers, and verification answers, before text is stored, served or logged.

Numbers are found in any spacing a person types them in (`138-0000-0002`, `138 0000 0002`,
`6222  0212 ...`, dashes of any width), full-width digits included (`\\d` is any Unicode digit),
and also said digit by digit in Chinese numerals (`一三八 零零零零 零零零二`, `幺` for 1, `两` for
2). A text with numerals in it is read with each numeral as a digit (`read_digits`: one
character for one, so what is found there is masked at the same place in the text); a numeral
just after a number's last digit (`...零零二一直`) may be a word, so it does not stop the match. A verification
answer is four characters after words that ask for one (`身份证后四位3200`, `卡号尾号六二零零`);
a bare answer (`3200 6200`) is masked by value once the NLU has recognised it (mask_values).

Runs in both environments: the gateway's, and Rasa's (Python 3.10) for its tracker store.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

# What people put between digits: spaces (doubled too, full-width, no-break), dashes of every width.
_SEP = r"[ \t\-\u00a0\u3000\u2010-\u2015\uff0d]{0,2}"
# The words that ask for an answer; their 四 is read as a digit (\u0664) when numerals are.
_ASKING = (
    r"(后[四4\u0664]位|末[四4\u0664]位|后[四4\u0664]|尾号|尾数|身份证号码?|身份证|证件号码?)([\s:：是为的号码]{0,4})"
)
# Chinese numerals become Arabic-Indic digits in the second reading: `\d` to the patterns, yet
# told apart from the digits as written at a number's edges.
_NUMERALS = "零〇一幺二两兩三四五六七八九"
_READ = str.maketrans({c: chr(0x0660 + int(d)) for c, d in zip(_NUMERALS, "00112223456789", strict=True)})
_NUMERAL = re.compile(f"[{_NUMERALS}]")
_ASCII = str.maketrans({chr(0x0660 + d): str(d) for d in range(10)})


@dataclass(frozen=True)
class _Reading:
    """The patterns for one reading of the text; `edge`: what may not stand just before or after a
    number (a digit: any, as written; or only a digit as written, when numerals are digits too)."""

    id_number: re.Pattern[str]
    card: re.Pattern[str]
    phone: re.Pattern[str]
    answer: re.Pattern[str]
    four: re.Pattern[str]

    @classmethod
    def of(cls, edge: str, one: str, three_to_nine: str) -> _Reading:
        return cls(
            # resident ID, 18 characters, the last may be X
            re.compile(rf"(?<![0-9A-Za-z])\d(?:{_SEP}\d){{16}}{_SEP}[\dXx](?![0-9A-Za-z])"),
            re.compile(rf"(?<!{edge})\d(?:{_SEP}\d){{12,18}}(?!{edge})"),  # card, 13-19 digits
            re.compile(rf"(?<!{edge})[{one}]{_SEP}[{three_to_nine}](?:{_SEP}\d){{9}}(?!{edge})"),  # mobile, 11
            re.compile(rf"{_ASKING}(\d{{3}}[\dXxＸｘ])(?!{edge}|[.．元])"),
            # a stand-alone group of four that could be a verification answer (card or ID last four)
            re.compile(rf"(?<!{edge})\d\d\d[\dXxＸｘ](?!{edge})"),
        )


_AS_WRITTEN = _Reading.of(r"\d", "1１", "3-9３-９")
_AS_SAID = _Reading.of(r"[0-9０-９]", "1１\u0661", "3-9３-９\u0663-\u0669")
_FULLWIDTH = {chr(c): chr(c + 0xFEE0) for c in range(ord("0"), ord("9") + 1)}
_HALF = str.maketrans(
    {**{v: k for k, v in _FULLWIDTH.items()}, **{chr(0x0660 + d): str(d) for d in range(10)}}
    | {"x": "X", "Ｘ": "X", "ｘ": "X"}
)


def read_digits(text: str) -> str:
    """`text` with every Chinese numeral read as a digit (Arabic-Indic, so `\\d`), same length."""
    return text.translate(_READ)


def _chars(match: re.Match[str]) -> str:
    return re.sub(r"[^\dXx]", "", match.group(0))


def _mask_all(m: re.Match[str], _text: str) -> str:
    # Not even the last four: the last four of a card or an ID are what a holder verifies with.
    return "*" * len(_chars(m))


def _mask_phone(m: re.Match[str], _text: str) -> str:
    digits = _chars(m).translate(_ASCII)
    return f"{digits[:3]}****{digits[-4:]}"


def _answer(m: re.Match[str], text: str) -> str:
    return text[m.start(1) : m.end(2)] + "****"  # the asking words as written, the answer gone


def _sub(pattern: re.Pattern[str], text: str, read: str, repl: Callable[[re.Match[str], str], str]) -> str:
    """`pattern` found in `read` (a same-length reading of `text`), each match's span of `text`
    replaced by `repl(match, text)`."""
    parts, last = [], 0
    for m in pattern.finditer(read):
        parts += [text[last : m.start()], repl(m, text)]
        last = m.end()
    return "".join([*parts, text[last:]]) if parts else text


# Whatever is masked holds four digits (the last may be X) with at most two separators between
# them: most messages have none, and are let through after this one look.
_MAYBE = re.compile(rf"\d(?:{_SEP}\d){{2}}{_SEP}[\dXxＸｘ]")


def _mask_reading(text: str, reading: _Reading, reader: Callable[[str], str]) -> str:
    read = reader(text)
    if not _MAYBE.search(read):
        return text
    for pattern, repl in ((reading.id_number, _mask_all), (reading.card, _mask_all), (reading.phone, _mask_phone)):
        masked = _sub(pattern, text, read, repl)
        if masked is not text:
            text, read = masked, reader(masked)
    return _sub(reading.answer, text, read, _answer)


def _as_written(text: str) -> str:
    return text


def mask(text: str) -> str:
    """Keep only what identifies nothing on its own: a phone as 138****5678; of card and ID numbers,
    and of verification answers, nothing. Digits count however written: ASCII, full-width, or
    Chinese numerals said one by one, spaced or dashed."""
    if _NUMERAL.search(text):  # numerals in it (一三八…, 幺, 两): read with them as digits
        return _mask_reading(text, _AS_SAID, read_digits)
    return _mask_reading(text, _AS_WRITTEN, _as_written)


def mask_values(text: str, values: Iterable[str]) -> str:
    """Mask these verification answers (four characters each) wherever they stand alone in `text`,
    however their digits are written (ASCII, full-width, Chinese numerals). One pattern for every
    holder: compiling one per answer filled re's cache with each new holder's digits."""
    wanted = {
        v.translate(_HALF) for v in (str(value).strip() for value in values) if re.fullmatch(r"[0-9]{3}[0-9Xx]", v)
    }
    if not wanted:
        return text

    def hide(m: re.Match[str], written: str) -> str:
        return "****" if m.group(0).translate(_HALF) in wanted else written[m.start() : m.end()]

    if _NUMERAL.search(text):
        return _sub(_AS_SAID.four, text, read_digits(text), hide)
    return _sub(_AS_WRITTEN.four, text, text, hide)
