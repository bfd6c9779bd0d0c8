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
    fee: int = 0  # the instalment fee inside `amount`


@dataclass(frozen=True)
class PlanOffer:
    """A plan as offered: everything the holder must see before agreeing.

    `principal` is the whole amount brought into the plan; of it, `carried_interest` and
    `carried_fees` are interest and 违约金 to date, carried in without a fee when the policy's
    fee base is the principal only. The rows sum to `principal + total_fee`.
    """

    type: PlanType
    principal: int
    periods: int
    fee_rate_per_period: Decimal
    total_fee: int
    apr: Decimal  # annualised, IRR method (monthly IRR x 12), as a fraction: 0.1303
    schedule: tuple[ScheduleRow, ...]
    needs_approval: bool
    fee_base: int = 0
    carried_interest: int = 0
    carried_fees: int = 0

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
    principal: int, periods: int, fee_rate: Decimal, start: date, fee_base: int | None = None
) -> tuple[int, list[ScheduleRow]]:
    """Total fee on `fee_base` (default the principal), rounded once, and monthly rows summing exactly
    to principal + fee. Row k is due k months after `start`, counted from `start` each time, so a plan
    begun on 31 Jan falls due on 28/29 Feb, then 31 Mar (no drift after a short month)."""
    if principal <= 0:
        raise ValidationFailed("nothing to split: the principal must be positive", principal=principal)
    if not 1 <= periods <= MAX_PERIODS:
        raise ValidationFailed("periods must be 1..60", periods=periods)
    if periods > principal:
        # Every row asks at least 1 fen: a smaller balance cannot be split this many ways.
        raise ValidationFailed(
            "the balance is too small for that many periods",
            principal=principal,
            periods=periods,
            max_periods=principal,
        )
    base = principal if fee_base is None else fee_base
    total_fee = round_fen(Decimal(base) * fee_rate * periods)
    amounts = split_evenly(principal + total_fee, periods)
    fees = _fees_within(split_evenly(total_fee, periods), amounts)
    return total_fee, [
        ScheduleRow(add_months(start, k + 1), amt, fee) for k, (amt, fee) in enumerate(zip(amounts, fees, strict=True))
    ]


def _fees_within(fees: list[int], amounts: list[int]) -> list[int]:
    """Each row's fee no more than the row (only tiny plans need it): excess moves to rows with room."""
    carry = 0
    for i in reversed(range(len(fees))):
        fees[i] += carry
        carry = max(0, fees[i] - amounts[i])
        fees[i] -= carry
    for i in range(len(fees)):
        take = min(carry, amounts[i] - fees[i])
        fees[i] += take
        carry -= take
    return fees


@dataclass(frozen=True)
class Owed:
    """What a plan would take in: principal, interest and 违约金 to date."""

    principal: int
    interest: int = 0
    late_fee: int = 0

    @property
    def total(self) -> int:
        return self.principal + self.interest + self.late_fee

    def fee_base(self, mode: str) -> int:
        return self.principal if mode == "principal" else self.total


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


def installment_offer(
    owed: Owed | int, periods: int, rules: BucketPolicy, today: date, fee_base_mode: str = "principal"
) -> PlanOffer:
    """An installment plan the policy allows, or OfferNotAllowed naming the nearest periods that are."""
    owed = owed if isinstance(owed, Owed) else Owed(owed)
    allowed = sorted(rules.installment_fee_rates)
    if not rules.allows("installment") or not allowed:
        raise OfferNotAllowed("installments are not offered for this account", allowed_periods=[])
    if periods not in rules.installment_fee_rates:
        nearest = min(allowed, key=lambda p: (abs(p - periods), -p))
        raise OfferNotAllowed(
            f"{periods} periods are not offered", requested=periods, nearest=nearest, allowed_periods=allowed
        )
    if periods > owed.total:
        # Refused rather than resized: the holder agrees to a number of periods, so a different one is
        # put to them as the nearest offer (the most periods that still leave every row 1 fen or more).
        fitting = [p for p in allowed if p <= owed.total]
        raise OfferNotAllowed(
            "the balance is too small for that many periods",
            requested=periods,
            nearest=max(fitting) if fitting else None,
            allowed_periods=fitting,
        )
    rate = rules.installment_fee_rates[periods]
    return _plan("installment", owed, periods, rate, today, fee_base_mode, rules.approval_needed("installment"))


def _plan(
    kind: PlanType, owed: Owed, periods: int, rate: Decimal, today: date, fee_base_mode: str, approval: bool
) -> PlanOffer:
    fee_base = owed.fee_base(fee_base_mode)
    total_fee, rows = installment_schedule(owed.total, periods, rate, today, fee_base)
    return PlanOffer(
        type=kind,
        principal=owed.total,
        periods=periods,
        fee_rate_per_period=rate,
        total_fee=total_fee,
        apr=irr_apr(owed.total, [r.amount for r in rows]),
        schedule=tuple(rows),
        needs_approval=approval,
        fee_base=fee_base,
        carried_interest=owed.interest,
        carried_fees=owed.late_fee,
    )


def latest_deferment(rules: BucketPolicy, today: date) -> date:
    """The latest day a deferment agreed today may move the payment to."""
    return today + timedelta(days=rules.deferment_max_days)


def latest_promise(rules: BucketPolicy, today: date) -> date:
    """The latest day a promise made today may name."""
    return today + timedelta(days=rules.promise_max_days)


def deferment_offer(amount: int, pay_on: date, rules: BucketPolicy, today: date) -> PlanOffer:
    """Pay `amount` later on `pay_on`, within the policy's maximum deferment; no fee."""
    if not rules.allows("deferment"):
        raise OfferNotAllowed("deferment is not offered for this account", max_days=0)
    latest = latest_deferment(rules, today)
    if amount <= 0:
        raise ValidationFailed("nothing to defer: the amount must be positive", amount=amount)
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
    owed: Owed | int,
    periods: int,
    rules: BucketPolicy,
    today: date,
    fee_rate: Decimal = Decimal(0),
    fee_base_mode: str = "principal",
) -> PlanOffer:
    """A personalised installment (个性化分期), up to the policy's periods (<= 60); usually pending approval."""
    owed = owed if isinstance(owed, Owed) else Owed(owed)
    if not rules.allows("personalized"):
        raise OfferNotAllowed("a personalised plan is not offered for this account")
    if not 1 <= periods <= rules.personalized_max_periods:
        raise OfferNotAllowed(
            f"{periods} periods are not offered",
            nearest=rules.personalized_max_periods,
            max_periods=rules.personalized_max_periods,
        )
    if periods > owed.total:
        raise OfferNotAllowed(
            "the balance is too small for that many periods", nearest=max(1, owed.total), max_periods=owed.total
        )
    return _plan("personalized", owed, periods, fee_rate, today, fee_base_mode, rules.approval_needed("personalized"))


def personalized_for_capacity(
    owed: Owed | int,
    monthly: int,
    rules: BucketPolicy,
    today: date,
    fee_rate: Decimal = Decimal(0),
    fee_base_mode: str = "principal",
) -> PlanOffer:
    """The shortest personalised plan whose instalments fit what the holder says they can pay a month.

    OfferNotAllowed when even the longest plan the policy allows asks more; its details name the
    smallest monthly amount that would fit (`min_monthly`) and the most periods (`max_periods`).
    """
    owed = owed if isinstance(owed, Owed) else Owed(owed)
    if not rules.allows("personalized"):
        raise OfferNotAllowed("a personalised plan is not offered for this account")
    if monthly <= 0:
        raise ValidationFailed("the monthly amount must be positive", monthly=monthly)
    longest = min(rules.personalized_max_periods, max(1, owed.total))  # every row at least 1 fen
    base = owed.fee_base(fee_base_mode)
    largest_row = 0
    for periods in range(1, longest + 1):
        _, rows = installment_schedule(owed.total, periods, fee_rate, today, base)
        largest_row = max(r.amount for r in rows)
        if largest_row <= monthly:
            return personalized_offer(owed, periods, rules, today, fee_rate, fee_base_mode)
    raise OfferNotAllowed(
        "that monthly amount cannot clear the balance within the longest plan",
        min_monthly=largest_row,
        max_periods=longest,
    )


PromiseProblem = Literal["not_positive", "past", "too_late", "too_much"]


@dataclass(frozen=True)
class PromiseVerdict:
    """Whether a promise may be recorded; if not, the first thing wrong with it (the date before the amount)."""

    problem: PromiseProblem | None
    latest: date  # the latest date the policy allows

    @property
    def ok(self) -> bool:
        return self.problem is None


def judge_promise(amount: int, due: date, today: date, owed: int, rules: BucketPolicy) -> PromiseVerdict:
    """A promise to pay must be positive, not in the past, within the policy window, not more than owed."""
    latest = latest_promise(rules, today)
    problem: PromiseProblem | None = None
    if amount <= 0:
        problem = "not_positive"
    elif due < today:
        problem = "past"
    elif due > latest:
        problem = "too_late"
    elif amount > owed:
        problem = "too_much"
    return PromiseVerdict(problem, latest)


def validate_promise(amount: int, due: date, today: date, owed: int, rules: BucketPolicy) -> None:
    """Raise what `judge_promise` finds wrong: ValidationFailed, or OfferNotAllowed beyond the window."""
    verdict = judge_promise(amount, due, today, owed, rules)
    if verdict.problem == "not_positive":
        raise ValidationFailed("the amount must be positive", amount=amount)
    if verdict.problem == "past":
        raise ValidationFailed("the date is in the past", date=due.isoformat())
    if verdict.problem == "too_late":
        raise OfferNotAllowed(
            "the date is beyond the promise window", nearest=verdict.latest.isoformat(), max_days=rules.promise_max_days
        )
    if verdict.problem == "too_much":
        raise ValidationFailed("the amount is more than is owed", amount=amount, owed=owed)
