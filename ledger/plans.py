"""Repayment plans: installment schedules, annualised rate (IRR), deferment, promises.

Pure functions over plain values. Each offer is built from policy, so an offer the
policy does not allow cannot be constructed; the nearest allowed one is named instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from ledger.errors import OfferNotAllowed, ValidationFailed
from ledger.fees import add_months
from ledger.money import round_fen
from ledger.policy import BucketPolicy

PlanType = Literal["installment", "deferment", "personalized"]
MAX_PERIODS = 60  # 2022 CBIRC/PBoC notice: installments at most 5 years


@dataclass(frozen=True)
class ScheduleRow:
    due_date: date
    amount: int


@dataclass(frozen=True)
class PlanOffer:
    """A plan as offered: everything the holder must see before agreeing."""

    type: PlanType
    principal: int
    periods: int
    fee_rate_per_period: Decimal
    total_fee: int
    apr: Decimal  # annualised, IRR method (monthly IRR x 12), as a fraction: 0.1303
    schedule: tuple[ScheduleRow, ...]
    needs_approval: bool

    @property
    def total(self) -> int:
        return self.principal + self.total_fee

    @property
    def first_amount(self) -> int:
        return self.schedule[0].amount


def split_evenly(total: int, periods: int) -> list[int]:
    """Equal rows in whole fen; the rounding remainder goes in the last row."""
    base = total // periods
    return [base] * (periods - 1) + [total - base * (periods - 1)]


def installment_schedule(
    principal: int, periods: int, fee_rate: Decimal, first_due: date
) -> tuple[int, list[ScheduleRow]]:
    """Total fee (rounded once) and monthly rows summing exactly to principal + fee."""
    if principal <= 0:
        raise ValidationFailed("nothing to split: the principal must be positive", principal=principal)
    if not 1 <= periods <= MAX_PERIODS:
        raise ValidationFailed("periods must be 1..60", periods=periods)
    total_fee = round_fen(Decimal(principal) * fee_rate * periods)
    amounts = split_evenly(principal + total_fee, periods)
    return total_fee, [ScheduleRow(add_months(first_due, k), amt) for k, amt in enumerate(amounts)]


def irr_apr(principal: int, amounts: list[int]) -> Decimal:
    """Annualised rate by the IRR method: the monthly rate r with principal = sum(a_k / (1+r)^k), times 12."""
    if sum(amounts) <= principal:
        return Decimal(0)

    def npv(rate: float) -> float:
        return sum(a / (1 + rate) ** (k + 1) for k, a in enumerate(amounts)) - principal

    low, high = 0.0, 1.0
    for _ in range(200):  # bisection: npv falls as the rate rises
        mid = (low + high) / 2
        if npv(mid) > 0:
            low = mid
        else:
            high = mid
    return (Decimal(repr((low + high) / 2)) * 12).quantize(Decimal("0.0001"))


def installment_offer(principal: int, periods: int, rules: BucketPolicy, today: date) -> PlanOffer:
    """An installment plan the policy allows, or OfferNotAllowed naming the nearest periods that are."""
    allowed = sorted(rules.installment_fee_rates)
    if not rules.allows("installment") or not allowed:
        raise OfferNotAllowed("installments are not offered for this account", allowed_periods=[])
    if periods not in rules.installment_fee_rates:
        nearest = min(allowed, key=lambda p: (abs(p - periods), -p))
        raise OfferNotAllowed(
            f"{periods} periods are not offered", requested=periods, nearest=nearest, allowed_periods=allowed
        )
    rate = rules.installment_fee_rates[periods]
    total_fee, rows = installment_schedule(principal, periods, rate, add_months(today, 1))
    return PlanOffer(
        type="installment",
        principal=principal,
        periods=periods,
        fee_rate_per_period=rate,
        total_fee=total_fee,
        apr=irr_apr(principal, [r.amount for r in rows]),
        schedule=tuple(rows),
        needs_approval=rules.approval_needed("installment"),
    )


def deferment_offer(amount: int, pay_on: date, rules: BucketPolicy, today: date) -> PlanOffer:
    """Pay `amount` later on `pay_on`, within the policy's maximum deferment; no fee."""
    if not rules.allows("deferment"):
        raise OfferNotAllowed("deferment is not offered for this account", max_days=0)
    latest = today + timedelta(days=rules.deferment_max_days)
    if pay_on <= today:
        raise ValidationFailed("the new date must be after today", date=pay_on.isoformat())
    if pay_on > latest:
        raise OfferNotAllowed(
            "that date is beyond what can be offered", nearest=latest.isoformat(), max_days=rules.deferment_max_days
        )
    return PlanOffer(
        type="deferment",
        principal=amount,
        periods=1,
        fee_rate_per_period=Decimal(0),
        total_fee=0,
        apr=Decimal(0),
        schedule=(ScheduleRow(pay_on, amount),),
        needs_approval=rules.approval_needed("deferment"),
    )


def personalized_offer(
    principal: int, periods: int, rules: BucketPolicy, today: date, fee_rate: Decimal = Decimal(0)
) -> PlanOffer:
    """A personalised installment (个性化分期) proposal, up to 60 periods; usually pending approval."""
    if not rules.allows("personalized"):
        raise OfferNotAllowed("a personalised plan is not offered for this account")
    if not 1 <= periods <= rules.personalized_max_periods:
        raise OfferNotAllowed(
            f"{periods} periods are not offered",
            nearest=rules.personalized_max_periods,
            max_periods=rules.personalized_max_periods,
        )
    total_fee, rows = installment_schedule(principal, periods, fee_rate, add_months(today, 1))
    return PlanOffer(
        type="personalized",
        principal=principal,
        periods=periods,
        fee_rate_per_period=fee_rate,
        total_fee=total_fee,
        apr=irr_apr(principal, [r.amount for r in rows]),
        schedule=tuple(rows),
        needs_approval=rules.approval_needed("personalized"),
    )


def validate_promise(amount: int, due: date, today: date, owed: int, rules: BucketPolicy) -> None:
    """A promise to pay must be positive, not more than owed, not in the past, within the policy window."""
    if amount <= 0:
        raise ValidationFailed("the amount must be positive", amount=amount)
    if amount > owed:
        raise ValidationFailed("the amount is more than is owed", amount=amount, owed=owed)
    if due < today:
        raise ValidationFailed("the date is in the past", date=due.isoformat())
    latest = today + timedelta(days=rules.promise_max_days)
    if due > latest:
        raise OfferNotAllowed(
            "the date is beyond the promise window", nearest=latest.isoformat(), max_days=rules.promise_max_days
        )
