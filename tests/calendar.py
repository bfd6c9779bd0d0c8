"""The instants the date- and hour-sensitive tests must hold at (Asia/Shanghai).

Plain data, importable from both environments (the bot side runs without the app's conftest).
All lie ahead of today, so a token a test stack signs "now" is also unexpired by the real clock.
"""

from __future__ import annotations

CALENDAR = {
    "monday-1000": "2027-03-01T10:00:00+08:00",
    "sunday-month-end-2230": "2027-10-31T22:30:00+08:00",
    "leap-day-2359": "2028-02-29T23:59:00+08:00",
    "year-end-2359": "2028-12-31T23:59:00+08:00",
}
# What `make test` runs at when TEST_CLOCK is not given: the day of the week that once broke CI.
DEFAULT = CALENDAR["monday-1000"]
