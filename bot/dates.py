"""Resolve the Chinese date expressions cardholders use to an ISO date relative to today."""

from __future__ import annotations

import calendar
import re
from datetime import date, timedelta

import cn2an

_WEEKDAY = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_NUM = r"[0-9]{1,2}|[一二两三四五六七八九十]{1,3}"

DATE_PATTERN = re.compile(
    rf"(?:大后天|后天|明天|今天|今日|明日|"
    rf"(?:下下|下个?|这个?|本)?(?:周|星期|礼拜)[一二三四五六日天末]|"
    rf"(?:下个?月|这个?月|本月)?(?:月底|月末|月初|月中)|"
    rf"(?:下个?月|这个?月|本月)(?:{_NUM})[号日]|"
    rf"(?:{_NUM})月(?:{_NUM})[号日]?|"
    rf"(?:{_NUM})[号日](?!子)|"
    rf"(?:{_NUM}|半)(?:个)?(?:天|星期|周|礼拜)(?:后|以后|之后|内|以内)|"
    rf"(?<![没不未])发工资(?:那天|后|以后)?|过(?:几|两)天|下个?月)"
)


def _n(text: str) -> int:
    return int(text) if text.isdigit() else int(cn2an.cn2an(text.replace("两", "二"), "smart"))


def _month_day(year: int, month: int, day: int) -> date:
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day, last))


def _next_month(today: date) -> tuple[int, int]:
    return (today.year + 1, 1) if today.month == 12 else (today.year, today.month + 1)


def resolve_date(span: str, today: date, payday: int = 15) -> date | None:
    """The first day the span can mean on or after today; None when it names no day."""
    s = span
    fixed = {"今天": 0, "今日": 0, "明天": 1, "明日": 1, "后天": 2, "大后天": 3, "过两天": 2, "过几天": 3}
    if s in fixed:
        return today + timedelta(days=fixed[s])
    if m := re.fullmatch(r"(下下|下个?|这个?|本)?(?:周|星期|礼拜)([一二三四五六日天末])", s):
        target = _WEEKDAY[m.group(2)]
        monday = today - timedelta(days=today.weekday())
        weeks = {"下下": 2, "下": 1, "下个": 1}.get(m.group(1) or "", 0)
        weekday = monday + timedelta(days=7 * weeks + target)
        return weekday if weekday >= today else weekday + timedelta(days=7)
    if m := re.fullmatch(r"(下个?月|这个?月|本月)?(月底|月末|月初|月中)", s):
        y, mo = _next_month(today) if (m.group(1) or "").startswith("下") else (today.year, today.month)
        day_of = {"月底": 31, "月末": 31, "月初": 1, "月中": 15}[m.group(2)]
        d = _month_day(y, mo, day_of)
        if d < today:
            y, mo = _next_month(d)
            d = _month_day(y, mo, day_of)
        return d
    if m := re.fullmatch(rf"(下个?月|这个?月|本月)({_NUM})[号日]", s):
        y, mo = _next_month(today) if m.group(1).startswith("下") else (today.year, today.month)
        return _month_day(y, mo, _n(m.group(2)))
    if m := re.fullmatch(rf"({_NUM})月({_NUM})[号日]?", s):
        mo, day = _n(m.group(1)), _n(m.group(2))
        if not 1 <= mo <= 12 or not 1 <= day <= 31:
            return None
        candidate = _month_day(today.year, mo, day)
        return candidate if candidate >= today else _month_day(today.year + 1, mo, day)
    if m := re.fullmatch(rf"({_NUM})[号日]", s):
        day = _n(m.group(1))
        if not 1 <= day <= 31:
            return None
        candidate = _month_day(today.year, today.month, day)
        if candidate < today:
            y, mo = _next_month(today)
            candidate = _month_day(y, mo, day)
        return candidate
    if m := re.fullmatch(rf"({_NUM}|半)(?:个)?(天|星期|周|礼拜)(?:后|以后|之后|内|以内)", s):
        count = 0.5 if m.group(1) == "半" else _n(m.group(1))
        days = count * (1 if m.group(2) == "天" else 7)
        return today + timedelta(days=int(days))
    if s.startswith("发工资"):
        d = _month_day(today.year, today.month, payday)
        if d < today:
            y, mo = _next_month(today)
            d = _month_day(y, mo, payday)
        return d
    if re.fullmatch(r"下个?月", s):
        y, mo = _next_month(today)
        return _month_day(y, mo, today.day)
    return None
