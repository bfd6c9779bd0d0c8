"""What a holder's date words mean at each instant of tests/calendar.py, written out by hand.

The promise a holder makes at 23:59 on New Year's Eve for "1月5日" is next year's, "明天" on
29 February is 1 March, and a Sunday still belongs to the week that began on Monday.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.dates import resolve_date
from tests.calendar import CALENDAR

pytestmark = pytest.mark.calendar

EXPECTED = {
    "monday-1000": {
        "明天": "2027-03-02",
        "月底": "2027-03-31",
        "周五": "2027-03-05",
        "下周五": "2027-03-12",
        "3月6日": "2027-03-06",
        "2月28日": "2028-02-28",  # already past this year
        "三天后": "2027-03-04",
        "下个月": "2027-04-01",
    },
    "sunday-month-end-2230": {
        "明天": "2027-11-01",
        "月底": "2027-10-31",  # today is the month's end
        "周五": "2027-11-05",
        "下周五": "2027-11-05",
        "11月5日": "2027-11-05",
        "三天后": "2027-11-03",
        "下个月": "2027-11-30",  # no 31 November
        "下个月月底": "2027-11-30",
    },
    "leap-day-2359": {
        "明天": "2028-03-01",
        "月底": "2028-02-29",
        "2月29日": "2028-02-29",
        "3月5日": "2028-03-05",
        "下周五": "2028-03-10",
        "三天后": "2028-03-03",
        "下个月": "2028-03-29",
    },
    "year-end-2359": {
        "明天": "2029-01-01",
        "后天": "2029-01-02",
        "1月5日": "2029-01-05",
        "12月31日": "2028-12-31",
        "月底": "2028-12-31",
        "下周五": "2029-01-05",
        "下个月15号": "2029-01-15",
        "一周内": "2029-01-07",
        "发工资": "2029-01-15",
    },
}


@pytest.mark.parametrize(
    ("instant", "span", "iso"), [(at, span, iso) for at, cases in EXPECTED.items() for span, iso in cases.items()]
)
def test_a_date_word_means_the_coming_day_at_each_instant(instant: str, span: str, iso: str) -> None:
    today = datetime.fromisoformat(CALENDAR[instant]).date()
    resolved = resolve_date(span, today)
    assert resolved is not None and resolved.isoformat() == iso


def test_every_instant_has_its_cases() -> None:
    assert set(EXPECTED) == set(CALENDAR)
