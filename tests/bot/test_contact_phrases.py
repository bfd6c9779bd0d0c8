"""The contact phrases the NLU reads (bot/contact_phrases.yml), as the action receives them."""

from __future__ import annotations

import pytest

from bot.contact_phrases import read


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        (
            "短信可以发 电话白天别打",
            [
                {"stance": "allow", "channel": "sms"},
                {"stance": "deny", "channel": "calls", "from": "08:00", "to": "18:00"},
            ],
        ),
        ("晚上六点以后再打", [{"stance": "only", "channel": "calls", "from": "18:00"}]),
        ("工作日别打", [{"stance": "deny", "channel": "calls", "days": "weekdays"}]),
        ("别打单位电话", [{"stance": "deny", "channel": "calls", "place": "workplace"}]),
        ("电话只在晚上6点到9点打", [{"stance": "only", "channel": "calls", "from": "18:00", "to": "21:00"}]),
        ("别发微信", [{"stance": "deny", "channel": "wechat"}]),
        ("有空再打给我", [{"stance": "deny", "channel": "calls", "unclear_time": True}]),
        ("我想问下还款日", []),
    ],
)
def test_channels_times_and_places_are_read_as_said(text: str, clauses: list[dict[str, object]]) -> None:
    assert read(text) == clauses
