"""Time is passed in, so tests can set "now"; dates are resolved in the app time zone.

Every process takes its clock from `process_clock()`: the system clock, or — only under the
test suite — the instant a test stack was started with (`TEST_CLOCK`), so end-to-end tests can
run the real processes on a Monday morning, a month's end or 29 February whatever today is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

# An ISO 8601 instant with offset ("2028-02-29T23:59:00+08:00"): every process of a test stack
# reads it as "now". Refused outside pytest (pytest sets PYTEST_VERSION in its environment), so
# a stray variable can never move a production clock.
TEST_CLOCK_ENV = "TEST_CLOCK"


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


class ClockRefused(RuntimeError):
    """TEST_CLOCK was set for a process that does not run under the test suite."""


def process_clock(tz: str = "Asia/Shanghai", environ: dict[str, str] | None = None) -> Clock:
    """The clock this process runs on: the system's, or the test stack's fixed instant."""
    env = os.environ if environ is None else environ
    fixed = env.get(TEST_CLOCK_ENV)
    if not fixed:
        return Clock.system(tz)
    if not env.get("PYTEST_VERSION"):
        raise ClockRefused(f"{TEST_CLOCK_ENV} is only for the test suite; unset it to run on the real clock")
    return Clock.at(datetime.fromisoformat(fixed), tz)
