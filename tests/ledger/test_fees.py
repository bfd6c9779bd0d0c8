"""The fee engine against docs/money.md's worked examples, and as properties."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.fees import AccountTerms, Payment, add_months, bucket_for, position
from ledger.policy import FeePolicy, Policy

# 10,000 yuan posted 1 Mar, statement 5 Mar, minimum 1,000, due 25 Mar.
EXAMPLE = AccountTerms(1_000_000, 100_000, date(2026, 3, 5), date(2026, 3, 25), interest_start=date(2026, 3, 1))


def test_nothing_paid_by_5_april(policy: Policy) -> None:
    pos = position(EXAMPLE, [], date(2026, 4, 5), policy.fees, interest_until=date(2026, 4, 5))
    assert pos.amount_due.interest == 17_500  # 10,000 x 0.05% x 35 days = 175 yuan
    assert pos.amount_due.late_fee == 5_000  # 5% x 1,000 = 50 yuan
    assert pos.overdue_days == 11 and pos.bucket == "M1"
    assert pos.amount_due.total == 100_000 + 17_500 + 5_000


def test_minimum_paid_on_the_due_date(policy: Policy) -> None:
    pos = position(
        EXAMPLE, [Payment(date(2026, 3, 25), 100_000)], date(2026, 4, 5), policy.fees, interest_until=date(2026, 4, 5)
    )
    assert pos.outstanding.interest == 17_000  # 10,000 x 25 days + 9,000 x 10 days, at 0.05% = 170 yuan
    assert pos.outstanding.late_fee == 0
    assert pos.overdue_days == 0 and pos.bucket == "M0"


def test_paid_in_full_by_due_date_keeps_the_interest_free_period(policy: Policy) -> None:
    pos = position(EXAMPLE, [Payment(date(2026, 3, 20), 1_000_000)], date(2026, 4, 5), policy.fees)
    assert pos.interest_free and pos.outstanding.total == 0


def test_unpaid_only_charges_interest_on_the_unpaid_part(policy: Policy) -> None:
    fees = policy.fees.model_copy(update={"interest_mode": "unpaid_only"})
    pos = position(
        EXAMPLE, [Payment(date(2026, 3, 25), 100_000)], date(2026, 4, 5), fees, interest_until=date(2026, 4, 5)
    )
    assert pos.outstanding.interest == 15_750  # 9,000 x 0.05% x 35 days


def test_late_fee_minimum_and_escalation(policy: Policy) -> None:
    late = policy.fees.late_fee.model_copy(
        update={"minimum_fen": 3_000, "rate": Decimal("0.05"), "escalated_rate": Decimal("0.06")}
    )
    fees = policy.fees.model_copy(update={"late_fee": late})
    small = AccountTerms(20_000, 2_000, date(2026, 3, 5), date(2026, 3, 25))
    pos = position(small, [], date(2026, 5, 1), fees)
    # Two missed cycles (25 Mar, 25 Apr): 5% of 20 yuan is 1 yuan, raised to the 30-yuan minimum each time.
    assert pos.missed_cycles == 2 and pos.amount_due.late_fee == 6_000
    big = AccountTerms(1_000_000, 100_000, date(2026, 3, 5), date(2026, 3, 25))
    assert position(big, [], date(2026, 5, 1), fees).amount_due.late_fee == 5_000 + 6_000


def test_no_interest_on_fees(policy: Policy) -> None:
    # Interest after two missed cycles is still principal x rate x days: the 50-yuan fee earns nothing.
    pos = position(EXAMPLE, [], date(2026, 5, 5), policy.fees, interest_until=date(2026, 5, 5))
    assert pos.amount_due.interest == 1_000_000 * 5 * 65 // 10_000


def test_allocation_fees_first_when_1_to_90_days_overdue(policy: Policy) -> None:
    pos = position(EXAMPLE, [Payment(date(2026, 4, 1), 20_000)], date(2026, 4, 5), policy.fees)
    _, to_fee, to_interest, to_principal = pos.allocations[0]
    assert (to_fee, to_interest, to_principal) == (5_000, 15_000, 0)


def test_allocation_principal_first_after_90_days(policy: Policy) -> None:
    pays = [Payment(date(2026, 7, 1), 20_000)]  # 98 days overdue
    pos = position(EXAMPLE, pays, date(2026, 7, 2), policy.fees)
    assert pos.allocations[0][1:] == (0, 0, 20_000)


def test_buckets() -> None:
    cases = {
        0: "M0",
        1: "M1",
        30: "M1",
        31: "M2",
        60: "M2",
        61: "M3",
        90: "M3",
        91: "M4",
        120: "M4",
        121: "M5",
        151: "M6",
        180: "M6",
        181: "M6+",
        900: "M6+",
    }
    assert {d: bucket_for(d) for d in cases} == cases


def test_add_months_clamps_to_month_end() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)


terms = st.builds(
    lambda bal, min_pct, start, grace: AccountTerms(
        bal, max(1, bal * min_pct // 100), start, start + timedelta(days=grace)
    ),
    st.integers(10_000, 50_000_000),
    st.integers(1, 100),
    st.dates(date(2024, 1, 1), date(2027, 1, 1)),
    st.integers(10, 25),
)


@settings(max_examples=200, deadline=None)
@given(terms, st.integers(0, 400), st.lists(st.tuples(st.integers(0, 400), st.integers(1, 5_000_000)), max_size=4))
def test_paying_the_amount_due_today_clears_the_overdue(
    t: AccountTerms,
    days: int,
    pays: list[tuple[int, int]],
) -> None:
    fees = _fees()
    today = t.statement_date + timedelta(days=days)
    history = [Payment(t.statement_date + timedelta(days=min(d, days)), a) for d, a in pays]
    before = position(t, history, today, fees)
    assert (
        before.amount_due.total == before.amount_due.principal + before.amount_due.interest + before.amount_due.late_fee
    )
    assert before.amount_due.total <= before.outstanding.total
    after = position(t, [*history, Payment(today, before.amount_due.total)], today, fees)
    assert after.overdue_days == 0
    assert after.outstanding.total == before.outstanding.total - before.amount_due.total
    settled = position(t, [*history, Payment(today, before.outstanding.total)], today, fees)
    assert settled.outstanding.total == 0


@settings(max_examples=100, deadline=None)
@given(terms, st.integers(0, 300), st.integers(1, 60))
def test_owing_never_shrinks_with_time_without_payment(t: AccountTerms, days: int, more: int) -> None:
    fees = _fees()
    a = position(t, [], t.statement_date + timedelta(days=days), fees)
    b = position(t, [], t.statement_date + timedelta(days=days + more), fees)
    assert b.outstanding.total >= a.outstanding.total


def _fees() -> FeePolicy:
    from pathlib import Path

    from ledger.policy import load_policy

    return load_policy(Path(__file__).resolve().parents[2] / "policy.yml").fees
