"""Every outbound send against the conduct rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.compliance import ContactFacts, decide, in_window
from ledger.policy import Policy

SH = ZoneInfo("Asia/Shanghai")
CLEAR = ContactFacts("Asia/Shanghai", False, frozenset(), 0, 0, False, False)


def at(h: int, m: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 12, day, h, m, tzinfo=SH)


def test_inside_the_window_sends_now(policy: Policy) -> None:
    d = decide(CLEAR, at(10), policy.contact)
    assert (d.outcome, d.send_at) == ("send", at(10))


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (at(7, 59), at(8)),
        (at(21), at(8, day=11)),
        (at(23, 30), at(8, day=11)),
        (at(0, 5), at(8)),
    ],
)
def test_quiet_hours_are_deferred_to_the_next_window(policy: Policy, wanted: datetime, expected: datetime) -> None:
    d = decide(CLEAR, wanted, policy.contact)
    assert (d.outcome, d.reason, d.send_at) == ("defer", "quiet_hours", expected)


def test_the_holders_local_time_decides(policy: Policy) -> None:
    urumqi = replace(CLEAR, timezone="Asia/Urumqi")  # UTC+6: 09:30 in Shanghai is 07:30 there
    d = decide(urumqi, at(9, 30), policy.contact)
    assert d.outcome == "defer" and d.send_at is not None and d.send_at.hour == 8


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (replace(CLEAR, holds=frozenset({"dispute"})), "hold"),
        (replace(CLEAR, holds=frozenset({"deceased"})), "hold"),
        (replace(CLEAR, sms_opted_out=True), "opted_out"),
        (replace(CLEAR, has_active_plan=True), "arrangement"),
        (replace(CLEAR, has_open_promise_not_due=True), "arrangement"),
        (replace(CLEAR, sent_today=1), "frequency_cap"),
        (replace(CLEAR, sent_last_7_days=3), "frequency_cap"),
    ],
)
def test_skips_name_their_reason(policy: Policy, facts: ContactFacts, reason: str) -> None:
    assert decide(facts, at(10), policy.contact) == decide(facts, at(23), policy.contact)
    assert (decide(facts, at(10), policy.contact).outcome, decide(facts, at(10), policy.contact).reason) == (
        "skip",
        reason,
    )


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(SH)))
def test_nothing_is_ever_sent_outside_the_window(policy: Policy, wanted: datetime) -> None:
    d = decide(CLEAR, wanted, policy.contact)
    assert d.send_at is not None and d.send_at >= wanted and in_window(d.send_at, "Asia/Shanghai", policy.contact)
    assert time(8) <= d.send_at.timetz().replace(tzinfo=None) < time(22)
