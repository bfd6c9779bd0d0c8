"""Channels, times and places in a contact request, read by the rules in bot/contact_phrases.yml.

`read(text)` returns clauses as plain dicts (ledger/contact_preferences.py `Clause.from_json`):
`{"stance": "deny", "channel": "calls", "from": "08:00", "to": "18:00"}` for "电话白天别打". The
NLU puts them in the parse data (`contact`); the action hands them to the ledger, which decides
what to record. Pure Python (yaml and re only), so tests read messages exactly as the bot does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PHRASES = Path(__file__).with_name("contact_phrases.yml")
CONTACT = "contact"  # the parse-data key the actions read (tracker.latest_message["contact"])
_DIGITS = {"零": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_NUMBER = r"(?:\d{1,2}|十[一二]?|[一二两三四五六七八九]|[一二]十[一二三四]?)"


def _compile(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.I) for p in patterns)


def _chinese_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_DIGITS[tens] if tens else 1) * 10 + (_DIGITS[ones] if ones else 0)
    return _DIGITS[text]


@dataclass(frozen=True)
class Rules:
    split: re.Pattern[str]
    channels: dict[str, tuple[re.Pattern[str], ...]]
    verbs: dict[str, tuple[re.Pattern[str], ...]]
    stances: dict[str, tuple[re.Pattern[str], ...]]
    days: dict[str, tuple[re.Pattern[str], ...]]
    periods: tuple[tuple[re.Pattern[str], str, str], ...]
    clock: re.Pattern[str]
    places: dict[str, tuple[re.Pattern[str], ...]]
    unclear: tuple[re.Pattern[str], ...]
    pm: re.Pattern[str]

    @staticmethod
    def _first(table: dict[str, tuple[re.Pattern[str], ...]], text: str) -> str | None:
        return next((name for name, pats in table.items() if any(p.search(text) for p in pats)), None)

    def _all(self, table: dict[str, tuple[re.Pattern[str], ...]], text: str) -> list[str]:
        return [name for name, pats in table.items() if any(p.search(text) for p in pats)]

    def _hour(self, prefix: str | None, number: str, half: str | None) -> int:
        hour = _chinese_number(number)
        if prefix and self.pm.fullmatch(prefix) and hour < 12:
            hour += 12
        return min(hour * 60 + (30 if half else 0), 24 * 60)

    def _times(self, clause: str) -> tuple[int | None, int | None, bool]:
        """(from, to) in minutes, and whether a time was said at all."""
        found = list(self.clock.finditer(clause))
        if found:
            first = found[0]
            start = self._hour(first["prefix"], first["hour"], first["half"])
            if first["range"] and len(found) > 1:
                second = found[1]
                prefix = second["prefix"] or first["prefix"]
                end = self._hour(prefix, second["hour"], second["half"])
                if end <= start and not second["prefix"] and end < 12 * 60:
                    end += 12 * 60  # 晚上6点到9点
                return start, end, True
            if first["before"]:
                return None, start, True
            return start, None, True  # 六点以后, or a bare "六点" read as from then on
        for pattern, start_s, end_s in self.periods:
            if pattern.search(clause):
                return _minutes(start_s), _minutes(end_s), True
        return None, None, False

    def read(self, text: str) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = []
        previous_channels: list[str] = []
        for part in (p for p in self.split.split(text) if p):
            channels = self._all(self.channels, part) or self._all(self.verbs, part)
            stance = self._first(self.stances, part)
            days = self._first(self.days, part)
            place = self._first(self.places, part)
            start, end, timed = self._times(part)
            unclear = any(p.search(part) for p in self.unclear)
            if not (channels or stance or days or place or timed or unclear):
                continue
            if not channels and (days or timed) and previous_channels:
                channels = previous_channels  # 电话白天别打，晚上可以: the same channel
            base: dict[str, Any] = {"stance": stance or "deny"}
            if stance is None and not (channels or place):
                continue  # a time alone ("晚上") says nothing about contact
            if stance != "deny" and not (channels or place or days or timed):
                continue  # "可以吗", "行": agreeing to nothing named
            if days:
                base["days"] = days
            if timed:
                if start is not None:
                    base["from"] = _hhmm(start)
                if end is not None:
                    base["to"] = _hhmm(end)
            if place:
                base["place"] = place
            if unclear:
                base["unclear_time"] = True
            for channel in channels or [""]:  # no channel named: the clause is about a place or a time
                clauses.append({**base, "channel": channel} if channel else dict(base))
            previous_channels = channels or previous_channels
        return clauses


def _minutes(hhmm: str) -> int:
    hours, _, mins = hhmm.partition(":")
    return int(hours) * 60 + int(mins)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse(data: dict[str, Any]) -> Rules:
    def table(name: str) -> dict[str, tuple[re.Pattern[str], ...]]:
        return {key: _compile(value) for key, value in (data.get(name) or {}).items()}

    pm = data["hour_prefix_pm"]
    clock = re.compile(
        rf"(?P<prefix>早上|上午|中午|{pm})?(?P<hour>{_NUMBER})(?:点|:00|时)(?P<half>半|30分?)?"
        rf"(?:(?P<after>{data['after']})|(?P<before>{data['before']})|(?P<range>{data['range']}))?"
    )
    return Rules(
        re.compile(data["split"]),
        table("channels"),
        table("verbs"),
        table("stances"),
        table("days"),
        tuple((re.compile(p["pattern"]), p["from"], p["to"]) for p in data.get("periods", [])),
        clock,
        table("places"),
        _compile(data.get("unclear_time", [])),
        re.compile(pm),
    )


@lru_cache(maxsize=4)
def load(path: str = str(PHRASES)) -> Rules:
    return parse(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def read(text: str) -> list[dict[str, Any]]:
    """The contact clauses of a normalised message."""
    return load().read(text)
