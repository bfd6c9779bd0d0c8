"""Issue 30: read contact requests with spaCy's rule-based matching or with the hand-written rules?

Both readers use the same vocabulary (bot/contact_phrases.yml) and the same clause assembly; they
differ in how the words are found: regular expressions over the text (bot/contact_phrases.py) or a
spaCy `Matcher` over a blank `zh` pipeline segmented by jieba (token patterns made from the same
lists; clock times as token patterns). Measured on bench/contact_phrases_labelled.yml: a message
counts as right when its clauses are exactly the labelled ones.

    PYTHONPATH=. .venv/bot/bin/python -m bench.contact_phrases_compare
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import spacy
import yaml
from spacy.matcher import Matcher

from bot import contact_phrases

LABELLED = Path(__file__).with_name("contact_phrases_labelled.yml")
_PLAIN = re.compile(r"^[\u4e00-\u9fffA-Za-z]+$")


class SpacyReader:
    """Finds channels, stances, days, periods, places and clock times as spaCy token matches."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
        self.matcher = Matcher(self.nlp.vocab)
        self.split = re.compile(data["split"])
        for table in ("channels", "verbs", "stances", "days", "places"):
            for name, words in (data.get(table) or {}).items():
                patterns = [self._pattern(w) for w in words if _PLAIN.match(w)]
                patterns += [[{"TEXT": {"REGEX": w}}] for w in words if not _PLAIN.match(w)]
                self.matcher.add(f"{table}:{name}", patterns)
        for i, period in enumerate(data.get("periods", [])):
            words = period["pattern"].split("|")
            self.matcher.add(f"period:{i}", [self._pattern(w) for w in words])
        self.periods = [(p["from"], p["to"]) for p in data.get("periods", [])]
        self.unclear = [self._pattern(w) for w in data.get("unclear_time", [])]
        self.matcher.add("unclear", self.unclear)
        number = r"^(\d{1,2}|十[一二]?|[一二两三四五六七八九]|[一二]十[一二三四]?)(点|点半|时)?(到|至)?$"
        self.matcher.add(
            "clock",
            [
                [
                    {"TEXT": {"REGEX": "^(早上|上午|中午|下午|晚上|傍晚|晚)$"}, "OP": "?"},
                    {"TEXT": {"REGEX": number}},
                    {"TEXT": {"REGEX": "^(点|点半|时|点到|点至)$"}, "OP": "?"},
                    {"TEXT": {"REGEX": "^(以后|之后|后|起|开始|以前|之前|前|到|至)$"}, "OP": "?"},
                ]
            ],
            greedy="LONGEST",
        )
        self.pm = re.compile(data["hour_prefix_pm"])

    def _pattern(self, phrase: str) -> list[dict[str, Any]]:
        return [{"TEXT": t.text} for t in self.nlp.make_doc(phrase)]

    def _first(self, found: list[str], table: str, order: list[str]) -> str | None:
        names = [f.split(":", 1)[1] for f in found if f.startswith(table + ":")]
        return next((n for n in order if n in names), None)

    def _clock(self, spans: list[str]) -> tuple[str | None, str | None, bool]:
        times = []
        for text in spans:
            m = re.search(r"(早上|上午|中午|下午|晚上|傍晚|晚)?(\d{1,2}|[一二两三四五六七八九十]+)", text)
            if not m:
                continue
            hour = contact_phrases._chinese_number(m.group(2))
            if m.group(1) and self.pm.fullmatch(m.group(1)) and hour < 12:
                hour += 12
            direction = "after" if re.search("以后|之后|后|起|开始", text) else "before" if "前" in text else "range"
            times.append((hour * 60 + (30 if "半" in text else 0), direction, m.group(1)))
        if not times:
            return None, None, False
        start, direction, _ = times[0]
        if len(times) > 1:
            end = times[1][0]
            if end <= start and end < 12 * 60 and not times[1][2]:
                end += 12 * 60
            return contact_phrases._hhmm(start), contact_phrases._hhmm(end), True
        if direction == "before":
            return None, contact_phrases._hhmm(start), True
        return contact_phrases._hhmm(start), None, True

    def read(self, text: str) -> list[dict[str, Any]]:
        clauses: list[dict[str, Any]] = []
        previous: list[str] = []
        for part in (p for p in self.split.split(text) if p):
            doc = self.nlp(part)
            hits = self.matcher(doc)
            found = [self.nlp.vocab.strings[m] for m, _, _ in hits]
            clocks = [doc[s:e].text for m, s, e in hits if self.nlp.vocab.strings[m] == "clock"]
            nouns = [f.split(":")[1] for f in found if f.startswith("channels:")]
            verbs = [f.split(":")[1] for f in found if f.startswith("verbs:")]
            channels: list[str] = [c for c in ("calls", "sms", "wechat") if c in (nouns or verbs)]
            stance = self._first(found, "stances", ["only", "deny", "allow"])
            days = self._first(found, "days", ["weekdays", "weekends", "all"])
            place = self._first(found, "places", ["workplace", "home", "mobile"])
            start, end, timed = self._clock(clocks)
            if not timed:
                period = next((int(f.split(":")[1]) for f in found if f.startswith("period:")), None)
                if period is not None:
                    start, end = self.periods[period]
                    timed = True
            unclear = "unclear" in found
            if not (channels or stance or days or place or timed or unclear):
                continue
            if not channels and (days or timed) and previous:
                channels = previous
            if stance is None and not (channels or place):
                continue
            if stance != "deny" and not (channels or place or days or timed):
                continue
            base: dict[str, Any] = {"stance": stance or "deny"}
            if days:
                base["days"] = days
            if timed:
                if start is not None:
                    base["from"] = start
                if end is not None:
                    base["to"] = end
            if place:
                base["place"] = place
            if unclear:
                base["unclear_time"] = True
            for channel in channels or [""]:
                clauses.append({**base, "channel": channel} if channel else dict(base))
            previous = channels or previous
        return clauses


def _key(clauses: list[dict[str, Any]]) -> list[tuple[tuple[str, Any], ...]]:
    return sorted(tuple(sorted(c.items())) for c in clauses)


def main() -> None:
    items = yaml.safe_load(LABELLED.read_text(encoding="utf-8"))
    data = yaml.safe_load(contact_phrases.PHRASES.read_text(encoding="utf-8"))
    readers = {"hand-written rules": contact_phrases.load().read, "spaCy Matcher (zh, jieba)": SpacyReader(data).read}
    for name, reader in readers.items():
        wrong = [it["text"] for it in items if _key(reader(it["text"])) != _key(it["clauses"])]
        print(f"{name}: {len(items) - len(wrong)}/{len(items)} exactly right", file=sys.stdout)
        for text in wrong:
            print(f"  wrong: {text} -> {reader(text)}")


if __name__ == "__main__":
    main()
