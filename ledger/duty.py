"""Who can answer a holder now, and what a waiting holder is told: pure decisions over plain values.

Persistence (tickets, agents' presence) is in ledger/handoff.py; time always comes in as an
aware datetime from the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from math import ceil
from typing import Literal

from ledger.policy import ContactPolicy, DutyHours, HandoffPolicy

HandoffKind = Literal["parked", "off_duty", "queue_full", "timed_out"]
WaitingTurnKind = Literal["withdraw", "act_now", "status"]

# While a holder waits, these are acted on at once by the bot: a stop or restriction of contact,
# someone who is not the holder, a death report (a cue of the message), a dispute.
ACT_NOW_INTENTS = frozenset({"stop_contact", "wrong_person", "dispute_charge"})
ACT_NOW_CUES = frozenset({"death"})
WITHDRAW_INTENT = "withdraw_handoff"
SEARCH_DAYS = 8  # how far ahead the next duty hours and callback slots are looked for


def _covers(hours: DutyHours, moment: datetime) -> bool:
    weekend = moment.weekday() >= 5
    if (hours.days == "weekdays" and weekend) or (hours.days == "weekends" and not weekend):
        return False
    return hours.start <= moment.time() < hours.end


def teams_on_duty(policy: HandoffPolicy, now: datetime) -> frozenset[str]:
    """The teams whose working hours include `now` (local time)."""
    return frozenset(team for team, hours in policy.duty_hours.items() if any(_covers(h, now) for h in hours))


def next_duty_start(policy: HandoffPolicy, now: datetime) -> datetime | None:
    """The first moment after `now` at which some team's working hours begin."""
    starts = []
    for day in range(SEARCH_DAYS):
        date = (now + timedelta(days=day)).date()
        for hours in policy.duty_hours.values():
            for h in hours:
                start = datetime.combine(date, h.start, tzinfo=now.tzinfo)
                if start > now and _covers(h, start):
                    starts.append(start)
    return min(starts, default=None)


@dataclass(frozen=True)
class HandoffDecision:
    """What a handoff request becomes. `parked`: a person will take it, the holder waits at
    `position` for about `wait_minutes`. Otherwise the ticket waits for agents while the bot keeps
    serving: `person_from` is when a person will reply (None: not known, nobody is present in
    working hours), and `callback_slots` the times the holder may choose to be called."""

    kind: HandoffKind
    position: int
    wait_minutes: int
    person_from: datetime | None
    callback_slots: tuple[datetime, ...]


def expected_wait(policy: HandoffPolicy, position: int, agents_present: int) -> int:
    """Minutes until a person answers the holder at `position` (1 = next)."""
    return max(1, ceil(position * policy.expected_wait_minutes / max(agents_present, 1)))


def callback_slots(handoff: HandoffPolicy, contact: ContactPolicy, now: datetime) -> tuple[datetime, ...]:
    """Callback times to offer: whole hours from the next but one, inside working hours and the
    contact window (a call at the end of the window still ends inside it), at least 3 hours apart."""
    latest = (datetime.combine(now.date(), contact.window_end) - timedelta(hours=1)).time()
    slot = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    found: list[datetime] = []
    end = now + timedelta(days=SEARCH_DAYS)
    while slot < end and len(found) < handoff.callback_slots:
        ok = contact.window_start <= slot.time() <= latest and teams_on_duty(handoff, slot)
        if ok and (not found or slot - found[-1] >= timedelta(hours=3)):
            found.append(slot)
        slot += timedelta(hours=1)
    return tuple(found)


def decide_handoff(
    handoff: HandoffPolicy, contact: ContactPolicy, now: datetime, agents_present: int, waiting: int
) -> HandoffDecision:
    """Park the holder for a person only when a team is on duty, someone is present and the queue
    (`waiting` holders already parked) has room; otherwise say when a person will reply."""
    on_duty = teams_on_duty(handoff, now)
    slots = callback_slots(handoff, contact, now)
    if not on_duty:
        return HandoffDecision("off_duty", 0, 0, next_duty_start(handoff, now), slots)
    if agents_present <= 0:
        return HandoffDecision("off_duty", 0, 0, None, slots)
    position = waiting + 1
    wait = expected_wait(handoff, position, agents_present)
    if waiting >= agents_present * handoff.capacity_per_agent:
        return HandoffDecision("queue_full", position, wait, now + timedelta(minutes=wait), slots)
    return HandoffDecision("parked", position, wait, None, ())


def while_waiting(intent: str | None, cues: frozenset[str]) -> WaitingTurnKind:
    """A parked holder's message: a withdrawal, something the bot must act on now, or a status reply."""
    if intent == WITHDRAW_INTENT:
        return "withdraw"
    if intent in ACT_NOW_INTENTS or cues & ACT_NOW_CUES:
        return "act_now"
    return "status"


def wait_ran_out(handoff: HandoffPolicy, created_at: datetime, now: datetime) -> bool:
    """A parked, unclaimed holder has waited `max_wait_minutes`: the bot takes them back."""
    return now - created_at >= timedelta(minutes=handoff.max_wait_minutes)


def callback_kept(callback_at: datetime, claimed_at: datetime | None, handoff: HandoffPolicy) -> bool:
    """An agent took the ticket by the callback time plus the grace."""
    return claimed_at is not None and claimed_at <= callback_at + timedelta(minutes=handoff.callback_grace_minutes)


def callback_allowed(handoff: HandoffPolicy, contact: ContactPolicy, now: datetime, at: datetime) -> bool:
    """A callback time a holder chose: in the future, within a week, in working hours and the contact window."""
    local = at.astimezone(now.tzinfo)
    return (
        now < local <= now + timedelta(days=SEARCH_DAYS)
        and contact.window_start <= local.time() < contact.window_end
        and bool(teams_on_duty(handoff, local))
    )


def typed_callback(now: datetime, hhmm_text: str, day: date | None) -> datetime | None:
    """A callback time the holder typed ("明天下午三点" as a day and "15:00"): on that day, or today;
    a time already past today with no day said is tomorrow's. None for what is not a time."""
    try:
        moment = time.fromisoformat(hhmm_text)
    except ValueError:
        return None
    at = datetime.combine(day or now.date(), moment, tzinfo=now.tzinfo)
    if day is None and at <= now:
        at += timedelta(days=1)
    return at


def hhmm(moment: time) -> str:
    return f"{moment.hour}:{moment.minute:02d}"
