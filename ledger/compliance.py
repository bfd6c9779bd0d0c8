"""The conduct rules every outbound send passes, as a pure function.

Window in the holder's local time (policy, never outside 08:00-22:00), frequency caps
per day and per 7 days, opt-outs, holds, and accounts that already have an arrangement.
A send in quiet hours is deferred to the next permitted time, never sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from ledger.policy import ContactPolicy

Outcome = Literal["send", "defer", "skip"]
SkipReason = Literal["opted_out", "hold", "frequency_cap", "arrangement"]


@dataclass(frozen=True)
class ContactFacts:
    """What the rules need to know about one account, gathered by the caller."""

    timezone: str
    sms_opted_out: bool
    holds: frozenset[str]
    sent_today: int  # SMS sent or scheduled on the holder's local calendar day of the send
    sent_last_7_days: int
    has_active_plan: bool
    has_open_promise_not_due: bool


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    reason: str  # "ok", "quiet_hours", or a SkipReason
    send_at: datetime | None = None


def next_window_start(local: datetime, rules: ContactPolicy) -> datetime:
    """The first permitted moment at or after `local` (aware, in the holder's zone)."""
    start, end = rules.window_start, rules.window_end
    t = local.timetz().replace(tzinfo=None)
    if start <= t < end:
        return local
    day = local.date() if t < start else local.date() + timedelta(days=1)
    return datetime.combine(day, start, tzinfo=local.tzinfo)


def decide(facts: ContactFacts, wanted_at: datetime, rules: ContactPolicy) -> Decision:
    """Send now, defer to the next window, or skip with the reason, for one SMS to one account."""
    if wanted_at.tzinfo is None:
        raise ValueError("wanted_at must be aware")
    if facts.holds:
        return Decision("skip", "hold")
    if facts.sms_opted_out:
        return Decision("skip", "opted_out")
    if facts.has_active_plan or facts.has_open_promise_not_due:
        return Decision("skip", "arrangement")
    if facts.sent_today >= rules.sms_per_day or facts.sent_last_7_days >= rules.sms_per_7_days:
        return Decision("skip", "frequency_cap")
    local = wanted_at.astimezone(ZoneInfo(facts.timezone))
    at = next_window_start(local, rules)
    if at != local:
        return Decision("defer", "quiet_hours", at)
    return Decision("send", "ok", local)


def in_window(when: datetime, timezone: str, rules: ContactPolicy) -> bool:
    t = when.astimezone(ZoneInfo(timezone)).timetz().replace(tzinfo=None)
    return rules.window_start <= t < rules.window_end
