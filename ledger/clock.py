"""Time is passed in, so tests can set "now"; dates are resolved in the app time zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Clock:
    tz: ZoneInfo
    fixed: datetime | None = None

    @classmethod
    def system(cls, tz: str = "Asia/Shanghai") -> Clock:
        return cls(ZoneInfo(tz))

    @classmethod
    def at(cls, when: datetime, tz: str = "Asia/Shanghai") -> Clock:
        if when.tzinfo is None:
            raise ValueError("a fixed clock needs an aware datetime")
        return cls(ZoneInfo(tz), when)

    def now(self) -> datetime:
        return (self.fixed or datetime.now(self.tz)).astimezone(self.tz)

    def today(self) -> date:
        return self.now().date()
