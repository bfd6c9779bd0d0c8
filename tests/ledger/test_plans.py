"""Plans: schedules that sum exactly, the IRR annualised rate, policy limits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.errors import OfferNotAllowed, ValidationFailed
from ledger.plans import (
    deferment_offer,
    installment_offer,
    installment_schedule,
    irr_apr,
    personalized_offer,
    validate_promise,
)
from ledger.policy import Policy

TODAY = date(2026, 4, 5)


@pytest.mark.parametrize(
    ("periods", "rate", "apr"),
    [
        (12, "0.006", "0.1303"),
        (12, "0.0066", "0.1431"),
        (3, "0.0075", "0.1345"),
        (60, "0.006", "0.1283"),
    ],
)
def test_annualised_rate_matches_domain_figures(periods: int, rate: str, apr: str) -> None:
    _, rows = installment_schedule(1_000_000, periods, Decimal(rate), TODAY)
    assert irr_apr(1_000_000, [r.amount for r in rows]) == Decimal(apr)


def test_twelve_periods_at_point_six_percent() -> None:
    fee, rows = installment_schedule(1_000_000, 12, Decimal("0.006"), date(2026, 4, 5))  # the start date
    assert fee == 72_000
    assert [r.amount for r in rows] == [89_333] * 11 + [89_337]  # remainder in the last row
    assert rows[0].due_date == date(2026, 5, 5) and rows[-1].due_date == date(2027, 4, 5)


@given(st.integers(1, 100_000_000), st.integers(1, 60), st.decimals("0", "0.02", places=4))
def test_schedule_sums_exactly_to_principal_plus_fee(principal: int, periods: int, rate: Decimal) -> None:
    if periods > principal:  # fewer fen than periods: refused, never rows of 0.00
        with pytest.raises(ValidationFailed):
            installment_schedule(principal, periods, rate, TODAY)
        return
    fee, rows = installment_schedule(principal, periods, rate, TODAY)
    assert sum(r.amount for r in rows) == principal + fee
    assert sum(r.fee for r in rows) == fee and all(0 <= r.fee <= r.amount for r in rows)
    assert len(rows) == periods
    assert all(r.amount >= 1 for r in rows)
    assert max(r.amount for r in rows) - min(r.amount for r in rows) < periods


def test_periods_outside_policy_name_the_nearest(policy: Policy) -> None:
    with pytest.raises(OfferNotAllowed) as err:
        installment_offer(1_000_000, 10, policy.for_bucket("M2"), TODAY)
    assert err.value.details["nearest"] == 12
    assert err.value.details["allowed_periods"] == [3, 6, 12, 24]


def test_installment_offer_shows_the_cost(policy: Policy) -> None:
    offer = installment_offer(1_000_000, 12, policy.for_bucket("M2"), TODAY)
    assert (offer.total_fee, offer.apr, offer.first_amount) == (72_000, Decimal("0.1303"), 89_333)
    assert offer.schedule[0].due_date == date(2026, 5, 5)


def test_deferment_limits(policy: Policy) -> None:
    rules = policy.for_bucket("M1")  # 15 days at most
    assert deferment_offer(50_000, date(2026, 4, 20), rules, TODAY).schedule[0].amount == 50_000
    with pytest.raises(OfferNotAllowed) as err:
        deferment_offer(50_000, date(2026, 5, 30), rules, TODAY)
    assert err.value.details["nearest"] == "2026-04-20"
    with pytest.raises(OfferNotAllowed):
        deferment_offer(50_000, date(2026, 4, 10), policy.for_bucket("M4"), TODAY)


def test_personalized_plan_needs_approval_and_stops_at_five_years(policy: Policy) -> None:
    offer = personalized_offer(5_000_000, 60, policy.for_bucket("M4"), TODAY)
    assert offer.needs_approval and offer.total_fee == 0
    with pytest.raises(OfferNotAllowed):
        personalized_offer(5_000_000, 61, policy.for_bucket("M4"), TODAY)
    with pytest.raises(OfferNotAllowed):
        personalized_offer(5_000_000, 12, policy.for_bucket("M1"), TODAY)


def test_promise_validation(policy: Policy) -> None:
    rules = policy.for_bucket("M1")  # 10 days
    validate_promise(10_000, TODAY, TODAY, 50_000, rules)
    for amount, due in [(0, TODAY), (60_000, TODAY), (10_000, date(2026, 4, 4))]:
        with pytest.raises(ValidationFailed):
            validate_promise(amount, due, TODAY, 50_000, rules)
    with pytest.raises(OfferNotAllowed):
        validate_promise(10_000, date(2026, 4, 30), TODAY, 50_000, rules)
