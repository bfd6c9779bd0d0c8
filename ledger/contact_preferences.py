"""Contact preferences that say exactly what was asked: per channel, per place, with time windows.

A channel (calls, SMS, WeChat) is "allowed", "opted_out", or "restricted": it may go only within
its windows (each on all days, working days or weekends, from-to in the holder's local time) and
never to a forbidden place (mobile, workplace, home). An unrestricted channel stays "allowed".

`interpret` turns what the NLU read in a message (clauses: a channel, yes/no/only, a time, a place)
into the changes to record; a request never broadens: a channel it does not name is untouched.
`ChannelRules` answers, at the moment of sending, whether a contact may go now and when it next may.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Literal, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger.clock import Clock
from ledger.conduct import set_preference
from ledger.models import ContactPreference

Days = Literal["weekdays", "weekends", "all"]
Place = Literal["mobile", "workplace", "home"]
Stance = Literal["deny", "allow", "only"]
CHANNELS: tuple[str, ...] = ("calls", "sms", "wechat")
PLACES: tuple[str, ...] = ("mobile", "workplace", "home")
DAYS: tuple[str, ...] = ("weekdays", "weekends", "all")
DAY_MINUTES = 24 * 60
Ambiguity = Literal["which_channel", "which_time", "contradiction"]


def _minutes(hhmm: str) -> int:
    hours, _, mins = hhmm.partition(":")
    value = int(hours) * 60 + int(mins or 0)
    if not 0 <= value <= DAY_MINUTES:
        raise ValueError(f"not a time of day: {hhmm}")
    return value


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class Window:
    """A time of day, on some days, when the channel may be used (local time, `end` exclusive)."""

    days: Days
    start: int  # minutes after midnight
    end: int  # minutes after midnight, up to 1440

    def covers(self, local: datetime) -> bool:
        weekend = local.weekday() >= 5
        if (self.days == "weekdays" and weekend) or (self.days == "weekends" and not weekend):
            return False
        minute = local.hour * 60 + local.minute
        return self.start <= minute < self.end

    def as_json(self) -> dict[str, str]:
        return {"days": self.days, "from": _hhmm(self.start), "to": _hhmm(self.end)}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Window:
        days = str(data.get("days", "all"))
        if days not in DAYS:
            raise ValueError(f"unknown days: {days}")
        return cls(cast(Days, days), _minutes(str(data["from"])), _minutes(str(data["to"])))


@dataclass(frozen=True)
class ChannelRules:
    """What one channel may do for one person."""

    value: str = "allowed"  # allowed | opted_out | restricted
    windows: tuple[Window, ...] = ()  # restricted in time: only within one of these
    forbidden_places: frozenset[str] = frozenset()

    @property
    def opted_out(self) -> bool:
        return self.value == "opted_out"

    def allows_place(self, place: str) -> bool:
        return place not in self.forbidden_places

    def allows_at(self, local: datetime) -> bool:
        return not self.windows or any(w.covers(local) for w in self.windows)

    def next_allowed(self, local: datetime, start: time, end: time) -> datetime | None:
        """The first moment at or after `local` inside both the policy's daily window
        [`start`, `end`) and this channel's windows; None if there is none within a week."""

        def ok(at: datetime) -> bool:
            return start <= at.timetz().replace(tzinfo=None) < end and self.allows_at(at)

        if ok(local):
            return local
        starts = {start.hour * 60 + start.minute, *(w.start for w in self.windows)}
        candidates = [
            datetime.combine(local.date() + timedelta(days=d), time(m // 60, m % 60), tzinfo=local.tzinfo)
            for d in range(8)
            for m in starts
            if m < DAY_MINUTES
        ]
        return min((c for c in candidates if c > local and ok(c)), default=None)

    def as_json(self) -> dict[str, object] | None:
        """The stored `rules` of a restricted channel (None when there is nothing to keep)."""
        if not self.windows and not self.forbidden_places:
            return None
        return {
            "windows": [w.as_json() for w in self.windows],
            "places": {p: "forbidden" for p in sorted(self.forbidden_places)},
        }

    @classmethod
    def stored(cls, value: str, rules: Mapping[str, object] | None) -> ChannelRules:
        """From a preference row's value and `rules`."""
        rules = rules or {}
        windows = rules.get("windows") or []
        places = rules.get("places") or {}
        assert isinstance(windows, list) and isinstance(places, dict)
        return cls(
            value,
            tuple(Window.from_json(w) for w in windows),
            frozenset(p for p, v in places.items() if v == "forbidden"),
        )


# --- what a message asked -------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    """One thing a message says about contact, as the NLU read it (bot/contact_phrases.yml)."""

    stance: Stance  # deny: 别打; allow: 可以发; only: 只在晚上打
    channel: str | None = None  # calls | sms | wechat; None: not named (别联系我)
    days: Days | None = None
    start: int | None = None  # minutes; None with `end` set: from the start of the day
    end: int | None = None  # minutes; None with `start` set: to the end of the day
    place: str | None = None
    unclear_time: bool = False  # a time was said that the rules could not read (有空再打)

    @property
    def timed(self) -> bool:
        return self.days is not None or self.start is not None or self.end is not None

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Clause:
        stance = str(data.get("stance", "deny"))
        channel = data.get("channel")
        days, place = data.get("days"), data.get("place")
        start, end = data.get("from"), data.get("to")
        if stance not in ("deny", "allow", "only") or channel not in (None, *CHANNELS):
            raise ValueError(f"not a contact clause: {dict(data)}")
        if days not in (None, *DAYS) or place not in (None, *PLACES):
            raise ValueError(f"not a contact clause: {dict(data)}")
        return cls(
            cast(Stance, stance),
            None if channel is None else str(channel),
            cast("Days | None", days),
            _minutes(str(start)) if start is not None else None,
            _minutes(str(end)) if end is not None else None,
            None if place is None else str(place),
            bool(data.get("unclear_time")),
        )


@dataclass(frozen=True)
class Request:
    """What to record: the new rules of each channel the message named (the others untouched),
    or the question to ask when it cannot be read for sure."""

    changes: dict[str, ChannelRules] = field(default_factory=dict)
    ambiguous: Ambiguity | None = None


class _Allowed:
    """Allowed minutes of a weekday and of a weekend day (within the policy's daily window)."""

    def __init__(self, start: int, end: int) -> None:
        self.span = (start, end)
        day = frozenset(range(start, end))
        self.weekday, self.weekend = day, day
        self.places: set[str] = set()

    def _minutes(self, clause: Clause) -> frozenset[int]:
        lo = clause.start if clause.start is not None else 0
        hi = clause.end if clause.end is not None else DAY_MINUTES
        if hi <= lo:  # 晚上十点到早上八点: across midnight
            return frozenset(range(lo, DAY_MINUTES)) | frozenset(range(0, hi))
        return frozenset(range(lo, hi))

    def apply(self, clause: Clause) -> None:
        if clause.place is not None:
            if clause.stance == "deny":
                self.places.add(clause.place)
            else:  # 只打手机: every other place is out
                self.places |= {p for p in PLACES if p != clause.place}
            if not clause.timed:
                return
        minutes = self._minutes(clause)
        days = clause.days or "all"
        for kind in ("weekday", "weekend"):
            named = days == "all" or days == kind + "s"
            allowed: frozenset[int] = getattr(self, kind)
            if clause.stance == "deny":
                allowed = allowed - minutes if named else allowed
            elif clause.stance == "only" or clause.stance == "allow":
                allowed = allowed & minutes if named else frozenset()
            setattr(self, kind, allowed)

    def rules(self) -> ChannelRules:
        full = frozenset(range(*self.span))
        if not self.weekday and not self.weekend and not self.places:
            return ChannelRules("opted_out")
        if self.weekday == full and self.weekend == full and not self.places:
            return ChannelRules("allowed")
        if self.weekday == self.weekend:
            windows = [Window("all", a, b) for a, b in _runs(self.weekday)] if self.weekday != full else []
        else:
            windows = [Window("weekdays", a, b) for a, b in _runs(self.weekday)]
            windows += [Window("weekends", a, b) for a, b in _runs(self.weekend)]
        if not windows and (self.weekday != full or self.weekend != full):
            return ChannelRules("opted_out")
        return ChannelRules("restricted", tuple(windows), frozenset(self.places))


def _runs(minutes: Iterable[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for m in sorted(minutes):
        if runs and runs[-1][1] == m:
            runs[-1] = (runs[-1][0], m + 1)
        else:
            runs.append((m, m + 1))
    return runs


def interpret(clauses: Sequence[Clause], window_start: time, window_end: time) -> Request:
    """The preferences a message asks for. Each channel it names gets exactly what was said about
    it, within the policy's daily window; a channel it does not name is left as it is ("短信可以发
    电话白天别打": SMS allowed, calls only outside the day). A clause naming no channel ("别联系我",
    "工作日别联系我") applies to calls and SMS. A time the rules could not read, or a channel both
    allowed and refused outright, is asked about instead of guessed."""
    if not clauses:
        return Request()
    if any(c.unclear_time for c in clauses):
        return Request(ambiguous="which_time")
    start, end = window_start.hour * 60 + window_start.minute, window_end.hour * 60 + window_end.minute
    per_channel: dict[str, list[Clause]] = {}
    for clause in clauses:
        named = (clause.channel,) if clause.channel else ("calls",) if clause.place else ("calls", "sms")
        for channel in named:
            per_channel.setdefault(channel, []).append(clause)
    changes: dict[str, ChannelRules] = {}
    for channel, said in per_channel.items():
        plain = {c.stance for c in said if not c.timed and c.place is None}
        if "deny" in plain and plain & {"allow", "only"}:
            return Request(ambiguous="contradiction")
        allowed = _Allowed(start, end)
        for clause in said:
            if not clause.timed and clause.place is None:
                if clause.stance == "deny":
                    allowed.weekday = allowed.weekend = frozenset()
                continue
            allowed.apply(clause)
        changes[channel] = allowed.rules()
    # 只发短信: the one channel named "only", with no time or place, means the others stop.
    only = {c.channel for c in clauses if c.stance == "only" and c.channel and not c.timed and c.place is None}
    if only:
        for channel in ("calls", "sms"):
            changes.setdefault(channel, ChannelRules("opted_out"))
    return Request(changes)


def record(
    session: Session, cardholder_id: int, changes: Mapping[str, ChannelRules], clock: Clock, actor: str
) -> dict[str, ChannelRules]:
    """Record what `interpret` read, for the person (every card of their phone); what is now held
    for each channel named, read back from the rows written."""
    held: dict[str, ChannelRules] = {}
    for channel, rules in changes.items():
        row = set_preference(session, cardholder_id, channel, rules.value, clock, actor=actor, rules=rules.as_json())
        held[channel] = ChannelRules.stored(row.value, row.rules)
    return held


def held(session: Session, cardholder_id: int) -> dict[str, ChannelRules]:
    """The person's rules per channel (a channel with no row is allowed)."""
    rows = session.execute(
        select(ContactPreference.channel, ContactPreference.value, ContactPreference.rules).where(
            ContactPreference.cardholder_id == cardholder_id, ContactPreference.channel.in_(CHANNELS)
        )
    )
    return {channel: ChannelRules.stored(value, rules) for channel, value, rules in rows}
