"""The keyword lists in bot/keywords.yml, compiled: intents decided outright, and message cues.

Pure Python (yaml and re only), so the NLU components load it inside Rasa and tests can compute
the cues a message gets the same way. Nothing outside bot/ reads the lists themselves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

KEYWORDS = Path(__file__).with_name("keywords.yml")
CUES = "cues"  # the parse-data key the actions read (tracker.latest_message["cues"])


@dataclass(frozen=True)
class Rule:
    """Matches when an entry of every group is found and no veto is."""

    name: str
    groups: tuple[tuple[re.Pattern[str], ...], ...]
    unless: tuple[re.Pattern[str], ...] = ()

    def matches(self, text: str) -> bool:
        return all(any(p.search(text) for p in group) for group in self.groups) and not any(
            v.search(text) for v in self.unless
        )


def _compile(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.I) for p in patterns)


def _cue(name: str, spec: list[str] | dict[str, Any]) -> Rule:
    if isinstance(spec, list):
        return Rule(name, (_compile(spec),))
    groups = spec.get("all") or [spec["any"]]
    return Rule(name, tuple(_compile(g) for g in groups), _compile(spec.get("unless", [])))


@dataclass(frozen=True)
class Keywords:
    intents: tuple[Rule, ...]
    cues: tuple[Rule, ...]

    def intent(self, text: str) -> str | None:
        """The intent an unambiguous phrase decides, if any (the first rule that matches)."""
        return next((r.name for r in self.intents if r.matches(text)), None)

    def cues_in(self, text: str) -> list[str]:
        """The names of the cues `text` carries, in the file's order."""
        return [r.name for r in self.cues if r.matches(text)]


def parse(data: dict[str, Any]) -> Keywords:
    intents = tuple(
        Rule(r["intent"], (_compile(r["patterns"]),), _compile(r.get("unless", []))) for r in data.get("intents", [])
    )
    cues = tuple(_cue(name, spec) for name, spec in (data.get(CUES) or {}).items())
    return Keywords(intents, cues)


@lru_cache(maxsize=4)
def load(path: str = str(KEYWORDS)) -> Keywords:
    return parse(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def cues_in(text: str) -> list[str]:
    """The cues of a normalised message, from bot/keywords.yml."""
    return load().cues_in(text)
