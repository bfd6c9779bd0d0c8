"""The rules that turn "now" into dates and hours, at each instant of tests/calendar.py.

Each case names its instant and what a person would expect there, written out by hand: a
Monday morning, a Sunday night at a month's end, 29 February and New Year's Eve a minute
before midnight. They take the instant as a value, so they hold whatever day the suite runs.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from ledger.compliance import ContactFacts, decide
from ledger.errors import OfferNotAllowed, ValidationFailed
from ledger.fees import AccountTerms, add_months, position
from ledger.plans import installment_schedule, validate_promise
from ledger.policy import Policy
from tests.calendar import CALENDAR

pytestmark = pytest.mark.calendar

AT = {name: datetime.fromisoformat(iso) for name, iso in CALENDAR.items()}
NOBODY_SAID_NO = ContactFacts("Asia/Shanghai")


@pytest.mark.parametrize(
    ("instant", "outcome", "goes_at"),
    [
        ("monday-1000", "send", "2027-03-01T10:00:00+08:00"),
        ("sunday-month-end-2230", "defer", "2027-11-01T08:00:00+08:00"),
        ("leap-day-2359", "defer", "2028-03-01T08:00:00+08:00"),
        ("year-end-2359", "defer", "2029-01-01T08:00:00+08:00"),
    ],
)
def test_a_message_asked_for_now_goes_now_or_when_the_window_next_opens(
    instant: str, outcome: str, goes_at: str, policy: Policy
) -> None:
    decision = decide(NOBODY_SAID_NO, AT[instant], policy.contact)
    assert decision.outcome == outcome
    assert decision.send_at == datetime.fromisoformat(goes_at)


@pytest.mark.parametrize(
    ("instant", "latest_m1"),
    [
        ("monday-1000", date(2027, 3, 11)),
        ("sunday-month-end-2230", date(2027, 11, 10)),
        ("leap-day-2359", date(2028, 3, 10)),
        ("year-end-2359", date(2029, 1, 10)),
    ],
)
def test_the_promise_window_runs_from_the_holders_today(instant: str, latest_m1: date, policy: Policy) -> None:
    today = AT[instant].date()
    rules = policy.for_bucket("M1")
    validate_promise(50_000, today, today, 120_000, rules)  # today itself is fine
    validate_promise(50_000, latest_m1, today, 120_000, rules)
    with pytest.raises(OfferNotAllowed) as beyond:
        validate_promise(50_000, latest_m1 + timedelta(days=1), today, 120_000, rules)
    assert beyond.value.details["nearest"] == latest_m1.isoformat()
    with pytest.raises(ValidationFailed):
        validate_promise(50_000, today - timedelta(days=1), today, 120_000, rules)


@pytest.mark.parametrize(
    ("instant", "due", "overdue_days", "bucket"),
    [
        ("monday-1000", date(2027, 2, 28), 1, "M1"),  # the day after February's last day
        ("sunday-month-end-2230", date(2027, 9, 30), 31, "M2"),  # a 31-day month
        ("leap-day-2359", date(2028, 1, 30), 30, "M1"),  # 29 February counts as a day
        ("year-end-2359", date(2028, 10, 1), 91, "M4"),
    ],
)
def test_overdue_days_and_bucket_count_calendar_days(
    instant: str, due: date, overdue_days: int, bucket: str, policy: Policy
) -> None:
    terms = AccountTerms(1_200_000, 120_000, due - timedelta(days=20), due)
    no_grace = policy.fees.model_copy(update={"grace_days": 0})  # the count itself, without 容时
    pos = position(terms, [], AT[instant].date(), no_grace)
    assert (pos.overdue_days, pos.bucket) == (overdue_days, bucket)
    # With the policy's grace days, the day after the due date is not overdue yet; later counts the same.
    graced = position(terms, [], AT[instant].date(), policy.fees)
    expected = (0, "M0") if overdue_days <= policy.fees.grace_days else (overdue_days, bucket)
    assert (graced.overdue_days, graced.bucket) == expected


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (date(2027, 12, 31), ["2028-01-31", "2028-02-29", "2028-03-31", "2028-04-30"]),
        (date(2026, 12, 31), ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]),
        (date(2028, 1, 29), ["2028-02-29", "2028-03-29", "2028-04-29", "2028-05-29"]),
        (date(2028, 11, 30), ["2028-12-30", "2029-01-30", "2029-02-28", "2029-03-30"]),
    ],
)
def test_instalment_dates_keep_the_start_day_across_short_months_and_the_year_end(
    start: date, expected: list[str]
) -> None:
    _, rows = installment_schedule(400_000, 4, Decimal("0.006"), start)
    assert [r.due_date.isoformat() for r in rows] == expected


def test_a_year_after_29_february_is_28_february() -> None:
    assert add_months(date(2028, 2, 29), 12) == date(2029, 2, 28)
