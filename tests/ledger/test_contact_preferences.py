"""Contact preferences say exactly what was asked (issue 30): what a request records, and when a
restricted channel may next be used."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from ledger.contact_preferences import ChannelRules, Clause, Window, interpret

SH = ZoneInfo("Asia/Shanghai")
OPEN, CLOSE = time(8), time(21)


def asked(*clauses: dict[str, object]) -> dict[str, tuple[str, list[dict[str, str]], list[str]]]:
    request = interpret([Clause.from_json(c) for c in clauses], OPEN, CLOSE)
    assert request.ambiguous is None
    return {
        channel: (rules.value, [w.as_json() for w in rules.windows], sorted(rules.forbidden_places))
        for channel, rules in request.changes.items()
    }


def test_a_request_never_broadens_to_a_channel_it_did_not_restrict() -> None:
    # 短信可以发 电话白天别打
    assert asked(
        {"stance": "allow", "channel": "sms"}, {"stance": "deny", "channel": "calls", "from": "08:00", "to": "18:00"}
    ) == {
        "sms": ("allowed", [], []),
        "calls": ("restricted", [{"days": "all", "from": "18:00", "to": "21:00"}], []),
    }
    # 别打单位电话: calls still reach the mobile
    assert asked({"stance": "deny", "channel": "calls", "place": "workplace"}) == {
        "calls": ("restricted", [], ["workplace"])
    }


def test_days_and_hours_become_the_windows_that_remain() -> None:
    assert asked({"stance": "deny", "channel": "calls", "days": "weekdays"}) == {
        "calls": ("restricted", [{"days": "weekends", "from": "08:00", "to": "21:00"}], [])
    }
    assert asked({"stance": "only", "channel": "calls", "from": "18:00", "to": "21:00"}) == {
        "calls": ("restricted", [{"days": "all", "from": "18:00", "to": "21:00"}], [])
    }
    # 只发短信: calls stop, SMS stays; 别联系我: both stop
    assert asked({"stance": "only", "channel": "sms"}) == {"sms": ("allowed", [], []), "calls": ("opted_out", [], [])}
    assert asked({"stance": "deny"}) == {"calls": ("opted_out", [], []), "sms": ("opted_out", [], [])}


@pytest.mark.parametrize(
    ("clauses", "why"),
    [
        ([{"stance": "deny", "channel": "calls", "unclear_time": True}], "which_time"),  # 有空再打
        ([{"stance": "deny", "channel": "sms"}, {"stance": "allow", "channel": "sms"}], "contradiction"),
    ],
)
def test_what_cannot_be_read_for_sure_is_asked_not_guessed(clauses: list[dict[str, object]], why: str) -> None:
    request = interpret([Clause.from_json(c) for c in clauses], OPEN, CLOSE)
    assert request.ambiguous == why and request.changes == {}


def test_the_next_allowed_moment_honours_both_the_policy_and_the_holders_windows() -> None:
    evenings = ChannelRules("restricted", (Window("all", 18 * 60, 21 * 60),))
    tuesday = datetime(2026, 4, 7, 10, 0, tzinfo=SH)
    assert evenings.next_allowed(tuesday, OPEN, CLOSE) == tuesday.replace(hour=18)
    assert evenings.next_allowed(tuesday.replace(hour=21, minute=30), OPEN, CLOSE) == datetime(
        2026, 4, 8, 18, 0, tzinfo=SH
    )
    weekends = ChannelRules("restricted", (Window("weekends", 8 * 60, 21 * 60),))
    assert weekends.next_allowed(tuesday, OPEN, CLOSE) == datetime(2026, 4, 11, 8, 0, tzinfo=SH)
    assert ChannelRules().next_allowed(tuesday, OPEN, CLOSE) == tuesday
