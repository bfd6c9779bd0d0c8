"""Every scripted conversation of tests/conversations/*.yml, one test each, against the real stack.

The module also writes what it saw to var/conversations.json: turns handled, conversations passed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conversations.runner import Conversation, Played, load_all, play
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e

CONVERSATIONS = load_all()
SUMMARY = Path(__file__).resolve().parents[2] / "var" / "conversations.json"


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, Played]]:
    seen: dict[str, Played] = {}
    yield seen
    if not seen:
        return
    themes: dict[str, dict[str, int]] = {}
    for conv in CONVERSATIONS:
        if conv.id in seen:
            t = themes.setdefault(conv.theme, {"conversations": 0, "passed": 0, "turns": 0, "turns_handled": 0})
            p = seen[conv.id]
            t["conversations"] += 1
            t["passed"] += not p.failures
            t["turns"] += p.turns
            t["turns_handled"] += p.handled
    total = {k: sum(t[k] for t in themes.values()) for k in ("conversations", "passed", "turns", "turns_handled")}
    summary = {
        **total,
        "turns_handled_share": round(total["turns_handled"] / total["turns"], 3) if total["turns"] else None,
        "by_theme": themes,
        "failed": {cid: p.failures for cid, p in seen.items() if p.failures},
    }
    SUMMARY.parent.mkdir(exist_ok=True)
    SUMMARY.write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


@pytest.mark.parametrize("conv", CONVERSATIONS, ids=[f"{c.theme}:{c.id}" for c in CONVERSATIONS])
def test_conversation(conv: Conversation, running: Running, database_url: str, results: dict[str, Played]) -> None:
    played, transcript = play(conv, running, database_url)
    results[conv.id] = played
    if os.environ.get("CONVERSATION_TRANSCRIPTS"):  # for writing new conversations: what each turn got
        out = SUMMARY.parent / "conversations"
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{conv.id}.txt").write_text("\n".join(transcript + played.failures) + "\n", encoding="utf-8")
    assert not played.failures, f"{conv.persona} over {conv.channel}:\n" + "\n".join(
        [*played.failures, "", *transcript]
    )
