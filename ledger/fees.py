"""Fee engine: interest, late fees, payment allocation, overdue days and buckets.

Pure functions over plain values. Day counting follows the worked example of docs/money.md:
interest runs for each day in [start, as_of); a payment made on day p reduces the
balance from day p + 1. Interest accrues on principal only (no interest on fees).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from ledger.money import round_fen
from ledger.policy import Bucket, FeePolicy

_MONTH_DAYS_CAP = 28


@dataclass(frozen=True)
class AccountTerms:
    """What one statement cycle says: the import record, in fen."""

    statement_balance: int
    minimum_payment: int
    statement_date: date
    due_date: date
    interest_start: date | None = None  # posting date when known; else the statement date
    # False for what a broken plan leaves: no interest-free period to keep, interest runs from the start.
    interest_free_possible: bool = True

    @property
    def accrual_start(self) -> date:
        return self.interest_start or self.statement_date


@dataclass(frozen=True)
class Payment:
    paid_on: date
    amount: int


@dataclass(frozen=True)
class Breakdown:
    """What is owed, itemised; `total` always equals the sum of the parts."""

    principal: int
    interest: int
    late_fee: int
    plan_fee: int = 0  # instalment fees inside an agreed plan

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.late_fee + self.plan_fee


@dataclass(frozen=True)
class AccountPosition:
    as_of: date
    overdue_days: int
    bucket: Bucket
    amount_due: Breakdown  # what makes the account current today
    outstanding: Breakdown  # everything owed (payoff)
    paid_total: int
    missed_cycles: int
    interest_free: bool
    allocations: tuple[tuple[date, int, int, int], ...] = field(default=())  # (day, fee, interest, principal)
    credit: int = 0  # paid beyond everything owed: kept on the account, never dropped
    grace_applied: bool = False  # 容时: a payment in the grace days counted as on time, or today is inside them
    tolerance_applied: bool = False  # 容差: a shortfall within the tolerance counted as paid


DAYS_PER_YEAR = 365


def annual_interest_rate(fees: FeePolicy) -> Decimal:
    """The daily rate as a simple yearly one, as banks quote it beside the daily (0.05% a day -> 18.25%)."""
    return fees.daily_interest_rate * DAYS_PER_YEAR


BUCKETS_ORDER: tuple[Bucket, ...] = ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+")


def bucket_for(overdue_days: int) -> Bucket:
    """M0 = current, M1 = 1-30 days ... M6 = 151-180, M6+ = over 180."""
    if overdue_days <= 0:
        return "M0"
    if overdue_days > 180:
        return "M6+"
    return f"M{(overdue_days - 1) // 30 + 1}"  # type: ignore[return-value]


def add_months(day: date, months: int) -> date:
    """Same day-of-month `months` later, clamped to the month's end (due dates do this)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, _MONTH_DAYS_CAP):
        try:
            return date(year, month, min(candidate, day.day))
        except ValueError:
            continue
    raise AssertionError("unreachable")  # pragma: no cover


def cycle_due_dates(terms: AccountTerms, as_of: date, grace_days: int = 0) -> list[date]:
    """Due dates of this and later cycles whose grace has passed by `as_of` (a miss is judged the day
    after the last grace day)."""
    dues, k = [], 0
    while (due := add_months(terms.due_date, k)) + timedelta(days=grace_days) < as_of:
        dues.append(due)
        k += 1
    return dues


def position(
    terms: AccountTerms,
    payments: Sequence[Payment],
    as_of: date,
    fees: FeePolicy,
    *,
    interest_until: date | None = None,
    late_fee_pause: tuple[date, date] | None = None,
) -> AccountPosition:
    """Where the account stands on `as_of`: overdue days, bucket, amount due and payoff.

    Interest runs to `interest_until` (exclusive), by default the end of `as_of`, so that
    the amount quoted is what a payment made today must be (a payment's own day accrues).
    A statement-style figure "to the 5th" passes `interest_until=as_of`.
    No 违约金 is assessed at a due date inside `late_fee_pause` (first, last), both inclusive:
    a deferment agreed as free of new fees.
    """
    interest_end = interest_until or as_of + timedelta(days=1)
    grace = timedelta(days=fees.grace_days)
    tolerance = fees.tolerance_fen
    on_time_until = terms.due_date + grace  # 容时: paid by the end of this day counts as paid by the due date
    pays = sorted((p for p in payments if p.paid_on <= as_of and p.amount > 0), key=lambda p: p.paid_on)
    paid_by_due = sum(p.amount for p in pays if p.paid_on <= on_time_until)
    shortfall = max(0, terms.statement_balance - paid_by_due)
    # 容差: a shortfall within the tolerance counts as paid in full (the interest-free period is kept).
    grace_kept = terms.interest_free_possible and shortfall <= tolerance
    rate = fees.daily_interest_rate
    posted_from = on_time_until if terms.interest_free_possible else terms.accrual_start - timedelta(days=1)

    principal = terms.statement_balance
    interest = Decimal(0)  # accrued interest, fractional fen, posted when the grace period is lost
    interest_paid = 0
    fee_owed = 0
    credit = 0
    missed = 0
    tolerated = False
    allocations: list[tuple[date, int, int, int]] = []
    dues = cycle_due_dates(terms, as_of, fees.grace_days)
    # Events in time order; interest accrues between them. Late fees are assessed when a due date's
    # grace has passed (at the end of its last grace day).
    cursor = terms.accrual_start
    # On that day, that day's payments count before the miss is judged (kind 0 sorts first).
    events: list[tuple[date, int, object]] = [(p.paid_on, 0, p) for p in pays] + [(d + grace, 1, d) for d in dues]
    events.sort(key=lambda e: (e[0], e[1]))

    def accrue(until: date) -> None:
        nonlocal interest, cursor
        # Interest on a day counts the balance at the start of that day; a payment on day p counts from p + 1.
        if until > cursor and not grace_kept:
            base = principal
            if fees.interest_mode == "unpaid_only" and cursor < terms.due_date:
                base = max(0, terms.statement_balance - paid_by_due)
            interest += Decimal(base) * rate * (until - cursor).days
            cursor = until
        elif until > cursor:
            cursor = until

    for day, kind, item in events:
        if kind == 1:  # a due date's grace passed (judged at the end of its last grace day)
            assert isinstance(item, date)
            accrue(day)
            unpaid_min = max(0, terms.minimum_payment - (terms.statement_balance - principal))
            paused = late_fee_pause is not None and late_fee_pause[0] <= item <= late_fee_pause[1]
            if 0 < unpaid_min <= tolerance and principal > 0:
                tolerated = True  # 容差: not a miss
            elif unpaid_min > 0 and principal > 0 and not paused:
                missed += 1
                fee_rate = (
                    fees.late_fee.escalated_rate
                    if missed >= fees.late_fee.escalate_after_misses
                    else fees.late_fee.rate
                )
                fee_owed += max(fees.late_fee.minimum_fen, round_fen(Decimal(unpaid_min) * fee_rate))
            continue
        assert isinstance(item, Payment)
        accrue(day + timedelta(days=1))  # the payment day itself counts at the old balance
        overdue_at_payment = _overdue_days(terms, terms.statement_balance - principal, day, fees)
        remaining = item.amount
        posted_interest = round_fen(interest) - interest_paid if day > posted_from else 0
        if 1 <= overdue_at_payment <= 90:
            to_fee = min(remaining, fee_owed)
            remaining -= to_fee
            to_interest = min(remaining, max(0, posted_interest))
            remaining -= to_interest
            to_principal = min(remaining, principal)
            remaining -= to_principal
        else:
            to_principal = min(remaining, principal)
            remaining -= to_principal
            to_fee = min(remaining, fee_owed)
            remaining -= to_fee
            to_interest = min(remaining, max(0, posted_interest))
            remaining -= to_interest
        fee_owed -= to_fee
        credit += remaining  # what no part of the debt could take
        interest_paid += to_interest
        principal -= to_principal
        allocations.append((day, to_fee, to_interest, to_principal))
    accrue(max(interest_end, cursor))

    total_paid = sum(p.amount for p in pays)
    principal_paid = terms.statement_balance - principal
    overdue = _overdue_days(terms, principal_paid, as_of, fees)
    interest_owed = max(0, round_fen(interest) - interest_paid) if as_of > posted_from else 0
    # A credit left by an early overpayment pays interest and fees posted later, before it is kept.
    to_interest = min(credit, interest_owed)
    interest_owed, credit = interest_owed - to_interest, credit - to_interest
    to_fee = min(credit, fee_owed)
    fee_owed, credit = fee_owed - to_fee, credit - to_fee
    if to_interest or to_fee:  # recorded like a payment's allocation, so every fen paid is accounted for
        allocations.append((as_of, to_fee, to_interest, 0))
    outstanding = Breakdown(principal=principal, interest=interest_owed, late_fee=fee_owed)
    unpaid_min = max(0, terms.minimum_payment - principal_paid)
    if overdue > 0:
        due = Breakdown(principal=min(unpaid_min, principal), interest=interest_owed, late_fee=fee_owed)
    else:
        due = Breakdown(principal=min(unpaid_min, principal), interest=0, late_fee=0)
    # Say when grace or tolerance made the difference (the view's breakdown reports both).
    in_grace_window = terms.due_date < as_of <= on_time_until and unpaid_min > tolerance
    late_in_grace = any(terms.due_date < p.paid_on <= on_time_until for p in pays) and (
        grace_kept or terms.minimum_payment - sum(p.amount for p in pays if p.paid_on <= on_time_until) <= tolerance
    )
    kept_by_tolerance = as_of > on_time_until and terms.interest_free_possible and 0 < shortfall <= tolerance
    unpaid_tolerated = as_of > on_time_until and 0 < unpaid_min <= tolerance and principal > 0
    return AccountPosition(
        as_of=as_of,
        overdue_days=overdue,
        bucket=bucket_for(overdue),
        amount_due=due,
        outstanding=outstanding,
        paid_total=total_paid,
        missed_cycles=missed,
        interest_free=grace_kept,
        allocations=tuple(allocations),
        credit=credit,
        grace_applied=in_grace_window or late_in_grace,
        tolerance_applied=tolerated or kept_by_tolerance or unpaid_tolerated,
    )


def _overdue_days(terms: AccountTerms, principal_paid: int, on: date, fees: FeePolicy) -> int:
    """Days past the due date while the minimum payment's principal is unpaid: none inside the grace
    days (容时), none while what is unpaid of the minimum is within the tolerance (容差); counted from
    the due date itself once the grace has passed."""
    if terms.minimum_payment - principal_paid <= fees.tolerance_fen:
        return 0
    if on <= terms.due_date + timedelta(days=fees.grace_days):
        return 0
    return (on - terms.due_date).days
