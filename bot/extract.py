"""Rule-based extraction of the contract's entities from normalised Chinese text.

Order matters: phone numbers, then labelled last-four digits, dates, installment counts,
amounts, and last of all bare four-character groups (entity `last4`, which the action
assigns to whichever of ID or card is still missing).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import cn2an

from bot.dates import DATE_PATTERN, resolve_date

Entity = dict[str, Any]
EXTRACTOR = "ChineseEntityExtractor"

_CN_DIGIT = "零〇一二两三四五六七八九十"
_CN_NUM = _CN_DIGIT + "百千万亿点"
# A Chinese numeral starts with a digit word: "几百" or a bare "万" is not a number.
_NUM = rf"(?:\d[\d,]*(?:\.\d+)?|[{_CN_DIGIT}][{_CN_NUM}]*)"
PHONE = re.compile(r"(?<![\d])(?:\+?86|0086)?[- ]?(1[3-9]\d[- ]?\d{4}[- ]?\d{4})(?!\d)")
ID_LAST4 = re.compile(
    r"(?:身份证|证件|身份证件)(?:号码?|号)?(?:的)?(?:后四位|末四位|最后四位|尾号|后4位)?\s*(?:是|为|:|：)?\s*(\d{3}[\dXx])(?![\dA-Za-z])"
)
CARD_LAST4 = re.compile(
    r"(?:(?:信用|银行)?卡(?:号|片)?(?:的)?(?:后四位|末四位|最后四位|后4位|尾号)|尾号|卡号)\s*(?:是|为|:|：)?\s*(\d{4})(?!\d)"
)
INSTALLMENTS = re.compile(
    rf"分\s*({_NUM})\s*期|({_NUM})\s*期(?!间)|({_NUM})\s*个月(?![后内])|(半年|一年|两年|三年|四年|五年)"
)
AMOUNT = re.compile(rf"([¥￥]\s*)?({_NUM})\s*(万|w|W|千|k|K)?\s*(元|块钱|块|rmb|RMB|人民币)?")
AMOUNT_VERBS = re.compile(r"(还|付|转|交|存|打|凑|拿|先还|能还|只能还|只有|给)\s*$")
# A time of day to be called back at ("明天下午三点打给我", "今晚7点半回个电话"): only beside a call word.
CALL_TIME = re.compile(
    r"(?P<part>上午|早上|中午|下午|傍晚|晚上|今晚|明晚)?\s*(?P<hour>\d{1,2}|[一二两三四五六七八九十]{1,3})\s*(?:点|时|:|：)"
    r"\s*(?P<minute>半|[0-5]\d(?:分)?|一刻)?"
)
CALL_WORDS = re.compile(r"打给我|打过来|打来|打电话|给我打|回电|回个电话|来电|联系我|再联系|call", re.IGNORECASE)
_AFTERNOON = ("下午", "傍晚", "晚上", "今晚", "明晚")
BARE4 = re.compile(r"(?<![\d.])(\d{3}[\dXx])(?![\d.A-Za-z])")
_YEARS = {"半年": 6, "一年": 12, "两年": 24, "三年": 36, "四年": 48, "五年": 60}


def to_number(text: str) -> Decimal | None:
    """Arabic or Chinese numerals (colloquial too: 三千五, 一万二, 1.2万) to a Decimal."""
    t = text.replace(",", "")
    try:
        if re.fullmatch(r"\d+(?:\.\d+)?", t):
            return Decimal(t)
        return Decimal(str(cn2an.cn2an(t.replace("〇", "零"), "smart")))
    except (ValueError, InvalidOperation, KeyError):
        return None


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _entity(name: str, start: int, end: int, value: str, text: str, **extra: Any) -> Entity:
    ent: Entity = {
        "entity": name,
        "start": start,
        "end": end,
        "value": value,
        "confidence_entity": 1.0,
        "extractor": EXTRACTOR,
    }
    if extra:
        ent["additional_info"] = extra
    return ent


def extract(text: str, today: date) -> list[Entity]:
    """All entities in `text`, spans as in `text`, values normalised per the contract."""
    found: list[Entity] = []
    taken = [False] * len(text)

    def free(a: int, b: int) -> bool:
        return not any(taken[a:b])

    def take(a: int, b: int) -> None:
        for i in range(a, b):
            taken[i] = True

    for m in PHONE.finditer(text):
        digits = re.sub(r"\D", "", m.group(1))
        found.append(_entity("phone", m.start(1), m.end(1), digits, text))
        take(m.start(), m.end())
    for name, pattern in (("id_last4", ID_LAST4), ("card_last4", CARD_LAST4)):
        for m in pattern.finditer(text):
            if free(m.start(1), m.end(1)):
                found.append(_entity(name, m.start(1), m.end(1), m.group(1).upper(), text))
                take(m.start(1), m.end(1))
    for m in DATE_PATTERN.finditer(text):
        if free(m.start(), m.end()):
            resolved = resolve_date(m.group(0), today)
            extra = {"iso": resolved.isoformat()} if resolved else {}
            found.append(_entity("date", m.start(), m.end(), m.group(0), text, **extra))
            take(m.start(), m.end())
    if CALL_WORDS.search(text):
        for m in CALL_TIME.finditer(text):
            at = call_time(m) if free(m.start(), m.end()) else None
            if at:
                found.append(_entity("callback_at", m.start(), m.end(), at, text))
                take(m.start(), m.end())
    for m in INSTALLMENTS.finditer(text):
        if not free(m.start(), m.end()):
            continue
        if m.group(4):
            count: Decimal | None = Decimal(_YEARS[m.group(4)])
        else:
            count = to_number(m.group(1) or m.group(2) or m.group(3))
        # "一个月" is a span of time, not a plan: counts in months start at two.
        minimum = 2 if m.group(3) else 1
        if count is not None and count == count.to_integral_value() and minimum <= count <= 120:
            found.append(_entity("installments", m.start(), m.end(), str(int(count)), text))
            take(m.start(), m.end())
    for start, end, low, high in amount_ranges(text):  # "五六百", "500到600元": the lower end, both kept
        if free(start, end):
            found.append(_entity("amount", start, end, _plain(low), text, low=_plain(low), high=_plain(high)))
            take(start, end)
    for m in AMOUNT.finditer(text):
        if not m.group(2) or not free(m.start(2), m.end(2)):
            continue
        currency, number, unit, suffix = m.group(1), m.group(2), m.group(3), m.group(4)
        value = to_number(number)
        if value is None or value <= 0:
            continue
        after = text[m.end() : m.end() + 1]
        if after in ("号", "日", "期", "月", "天", "位", "年", "点", "%"):
            continue
        multiplier = {"万": 10000, "w": 10000, "W": 10000, "千": 1000, "k": 1000, "K": 1000}.get(unit or "", 1)
        has_marker = bool(currency or suffix or unit or re.search("[百千万]", number))
        verb_before = bool(AMOUNT_VERBS.search(text[max(0, m.start() - 4) : m.start()]))
        if not (has_marker or (verb_before and value >= 10)):
            continue
        end = m.end() if (unit or suffix) else m.end(2)
        found.append(_entity("amount", m.start(), end, _plain(value * multiplier), text))
        take(m.start(), end)
    for m in BARE4.finditer(text):
        if free(m.start(1), m.end(1)):
            found.append(_entity("last4", m.start(1), m.end(1), m.group(1).upper(), text))
            take(m.start(1), m.end(1))
    return sorted(found, key=lambda e: e["start"])


def call_time(m: re.Match[str]) -> str | None:
    """ "下午三点" -> "15:00", "晚上7点半" -> "19:30"; a bare hour from 1 to 7 is the afternoon's
    (nobody asks to be called at three in the morning). None for what is not a time of day."""
    hour_n = to_number(m.group("hour"))
    if hour_n is None or hour_n != hour_n.to_integral_value():
        return None
    hour, part, minute_text = int(hour_n), m.group("part") or "", m.group("minute") or ""
    if not 0 <= hour <= 23:
        return None
    if hour < 12 and (part in _AFTERNOON or (part == "中午" and hour <= 2) or (not part and 1 <= hour <= 7)):
        hour += 12
    minute = {"半": 30, "一刻": 15, "": 0}.get(minute_text)
    if minute is None:
        minute = int(minute_text.rstrip("分"))
    return f"{hour:02d}:{minute:02d}" if hour <= 23 else None


# A range of money as people say it: two neighbouring digit words before the unit ("五六百", "一两千",
# "七八千"), or two figures joined by 到/至/-/~ with a money marker ("500到600", "1000-1500元").
_NEIGHBOURS = re.compile(r"([一二两三四五六七八九])([二两三四五六七八九])(十|百|千|万)(?:块钱|块|元)?")
_SPAN = re.compile(rf"({_NUM})\s*(?:到|至|-|~|～)\s*({_NUM})\s*(万|千|百)?\s*(元|块钱|块)?")
_UNIT = {"十": 10, "百": 100, "千": 1000, "万": 10000}


def amount_ranges(text: str) -> list[tuple[int, int, Decimal, Decimal]]:
    """Money ranges in `text`: (start, end, low, high) in yuan."""
    found = []
    for m in _NEIGHBOURS.finditer(text):
        a, b = to_number(m.group(1).replace("两", "二")), to_number(m.group(2).replace("两", "二"))
        if a is not None and b is not None and b == a + 1:
            unit = _UNIT[m.group(3)]
            found.append((m.start(), m.end(), a * unit, b * unit))
    for m in _SPAN.finditer(text):
        low, high = to_number(m.group(1)), to_number(m.group(2))
        after = text[m.end() : m.end() + 1]
        if low is None or high is None or after in ("号", "日", "期", "月", "天", "点", "%"):
            continue
        unit = _UNIT.get(m.group(3) or "", 1)
        if (m.group(3) or m.group(4) or low >= 100) and 0 < low < high:
            found.append((m.start(), m.end(), low * unit, high * unit))
    return found
