"""The life of an agreement: payments allocated to plan rows, rows paid or missed, a plan
completed or broken, a promise kept or broken, and what is owed once a plan has broken.

Pure functions over plain values: the state of an agreement on any day is a function of its
terms, the payments and the calendar, so end-of-day processing that persists it is idempotent
and catches up after downtime by computing the same answer for the latest day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

from ledger.fees import AccountPosition, AccountTerms, Breakdown, Payment, add_months, bucket_for, position
from ledger.money import round_fen
from ledger.policy import AgreementPolicy, FeePolicy

RowStatus = Literal["due", "paid", "missed"]
PlanLife = Literal["active", "completed", "broken"]
PromiseStatus = Literal["open", "kept", "broken"]


@dataclass(frozen=True)
class AgreedRow:
    due_date: date
    amount: int
    fee: int = 0  # the instalment fee inside `amount`


@dataclass(frozen=True)
class AgreementTerms:
    """A plan as agreed. `principal`, `carried_interest` and `carried_fees` are what was owed when it
    began (their sum is the amount brought into the plan); the rows add the plan's fee on top."""

    start: date
    principal: int
    carried_interest: int
    carried_fees: int
    rows: tuple[AgreedRow, ...]
    paid_before: int = 0  # fen paid on the account before the plan was agreed: not the plan's

    @property
    def total(self) -> int:
        return sum(r.amount for r in self.rows)

    @property
    def total_fee(self) -> int:
        return sum(r.fee for r in self.rows)


@dataclass(frozen=True)
class RowState:
    due_date: date
    amount: int
    paid: int
    status: RowStatus
    paid_on: date | None  # the day the row was fully paid


@dataclass(frozen=True)
class PlanState:
    """A plan on `as_of`: each row, the plan's status and the figures the account view shows."""

    as_of: date
    status: PlanLife
    rows: tuple[RowState, ...]
    ended_on: date | None  # completed or broken on this day
    paid: int  # paid into the plan (towards its rows)
    credit: int  # paid beyond what the plan asked for
    remaining: int  # still unpaid on the rows (0 once completed)
    amount_due: int  # arrears when an instalment is late, else the next instalment
    overdue_days: int  # from the earliest missed instalment; 0 when none
    next_due_date: date | None
    next_due_amount: int
    extra_interest: int = 0  # only when the policy lets interest continue during a plan
    extra_late_fees: int = 0

    @property
    def paid_periods(self) -> int:
        return sum(1 for r in self.rows if r.status == "paid")

    @property
    def missed_periods(self) -> int:
        return sum(1 for r in self.rows if r.status == "missed")

    @property
    def periods_left(self) -> int:
        return len(self.rows) - self.paid_periods

    @property
    def arrears(self) -> int:
        """What the missed instalments still lack."""
        return sum(r.amount - r.paid for r in self.rows if r.status == "missed")


def plan_payments(payments: Sequence[Payment], paid_before: int) -> list[Payment]:
    """The payments that belong to a plan: everything after the first `paid_before` fen, in date order."""
    skip, out = paid_before, []
    for p in sorted(payments, key=lambda p: p.paid_on):
        taken = min(skip, p.amount)
        skip -= taken
        if p.amount - taken > 0:
            out.append(Payment(p.paid_on, p.amount - taken))
    return out


def _miss_day(row: AgreedRow, rules: AgreementPolicy) -> date:
    """The first day on which an unpaid row counts as missed (its date plus the grace days, then one)."""
    return row.due_date + timedelta(days=rules.grace_days + 1)


def plan_state(
    terms: AgreementTerms,
    payments: Sequence[Payment],
    as_of: date,
    rules: AgreementPolicy,
    daily_rate: Decimal,
    late_fee_rate: Decimal = Decimal(0),
) -> PlanState:
    """Allocate the plan's payments to its rows in order and judge each row, and the plan, on `as_of`."""
    pays = [p for p in plan_payments(payments, terms.paid_before) if p.paid_on <= as_of]
    rows = terms.rows
    paid = [0] * len(rows)
    # A row of 0.00 (only in plans stored before rows were kept at 1 fen or more) asks nothing: paid.
    paid_on: list[date | None] = [r.due_date if r.amount <= 0 else None for r in rows]
    completed_on: date | None = None
    credit = 0
    k = 0
    for p in pays:
        left = p.amount
        if completed_on is not None:
            credit += left
            continue
        unearned = sum(r.fee for r in rows[k:] if r.due_date > p.paid_on)
        if rules.early_payoff_unearned_fees == "waived" and unearned:
            # Paid off early: what is left, less the fees of instalments not yet due, is enough.
            need = sum(r.amount - paid[i] for i, r in enumerate(rows) if i >= k) - unearned
            if need <= left:
                for i in range(k, len(rows)):
                    paid[i] = rows[i].amount - (rows[i].fee if rows[i].due_date > p.paid_on else 0)
                    paid_on[i] = p.paid_on
                k, completed_on = len(rows), p.paid_on
                credit += left - need
                continue
        while left > 0 and k < len(rows):
            take = min(left, rows[k].amount - paid[k])
            paid[k] += take
            left -= take
            if paid[k] == rows[k].amount:
                paid_on[k] = p.paid_on
                k += 1
        if k == len(rows):
            completed_on = p.paid_on
        credit += left

    def unpaid_at(i: int, day: date) -> bool:
        done = paid_on[i]
        return done is None or done >= day

    # Broken on the first day more rows are missed (unpaid past grace) than the policy allows,
    # or when the last row is missed: nothing is left to wait for.
    broken_on: date | None = None
    for day in sorted({_miss_day(r, rules) for r in rows if _miss_day(r, rules) <= as_of}):
        if completed_on is not None and completed_on < day:
            break
        missed = [i for i, r in enumerate(rows) if _miss_day(r, rules) <= day and unpaid_at(i, day)]
        if len(missed) > rules.misses_allowed or (len(rows) - 1) in missed:
            broken_on = day
            break

    states = []
    for i, r in enumerate(rows):
        if paid_on[i] is not None:
            status: RowStatus = "paid"
        elif _miss_day(r, rules) <= as_of:
            status = "missed"
        else:
            status = "due"
        states.append(RowState(r.due_date, r.amount, paid[i], status, paid_on[i]))
    life: PlanLife = "broken" if broken_on else "completed" if completed_on else "active"
    unpaid = [(s, s.amount - s.paid) for s in states if s.status != "paid"]
    remaining = sum(u for _, u in unpaid)
    arrears = sum(u for s, u in unpaid if s.due_date < as_of)
    upcoming = next((s for s, _ in unpaid if s.due_date >= as_of), None)
    next_amount = upcoming.amount - upcoming.paid if upcoming else 0
    missed_dates = [s.due_date for s in states if s.status == "missed"]
    extra_interest, extra_late = _continued_accrual(terms, pays, states, as_of, rules, daily_rate, late_fee_rate)
    return PlanState(
        as_of=as_of,
        status=life,
        rows=tuple(states),
        ended_on=broken_on or completed_on,
        paid=sum(paid),
        credit=credit,
        remaining=remaining,
        amount_due=arrears if arrears else next_amount,
        overdue_days=(as_of - min(missed_dates)).days if missed_dates else 0,
        next_due_date=upcoming.due_date if upcoming else None,
        next_due_amount=next_amount,
        extra_interest=extra_interest,
        extra_late_fees=extra_late,
    )


def _continued_accrual(
    terms: AgreementTerms,
    pays: Sequence[Payment],
    states: Sequence[RowState],
    as_of: date,
    rules: AgreementPolicy,
    daily_rate: Decimal,
    late_fee_rate: Decimal,
) -> tuple[int, int]:
    """Interest and 违约金 on the amount inside a plan, when the policy says they continue."""
    interest = Decimal(0)
    if rules.interest_during_plan == "continue" and terms.total:
        # Interest on the principal's share of what is unpaid, day by day (no interest on fees).
        paid_so_far, cursor = 0, terms.start
        for p in [*pays, Payment(as_of + timedelta(days=1), 0)]:
            if p.paid_on > cursor:
                share = Decimal(terms.principal) * (terms.total - paid_so_far) / terms.total
                interest += share * daily_rate * (p.paid_on - cursor).days
                cursor = p.paid_on
            paid_so_far = min(terms.total, paid_so_far + p.amount)
    late = 0
    if rules.late_fees_during_plan == "continue":
        # The statement's 违约金 rate, on each instalment missed (unpaid past grace).
        late = sum(round_fen(Decimal(s.amount) * late_fee_rate) for s in states if s.status == "missed")
    return round_fen(interest), late


def left_at_break(terms: AgreementTerms, state: PlanState, broke: date) -> Breakdown:
    """What a broken plan leaves owed, itemised. Fees of instalments not yet due when it broke are
    dropped; what was paid into the plan went to fees and interest first, then principal (as for an
    account 1-90 days overdue), so interest that resumes runs on the principal part only.
    `state` is the plan on the day before it broke."""
    earned_fee = sum(r.fee for r in terms.rows if r.due_date < broke)
    paid = state.paid
    parts = []
    for owed in (terms.carried_fees, terms.carried_interest, earned_fee, terms.principal):
        take = min(paid, owed)
        paid -= take
        parts.append(owed - take)
    fees_left, interest_left, plan_fee_left, principal_left = parts
    return Breakdown(principal=principal_left, interest=interest_left, late_fee=fees_left, plan_fee=plan_fee_left)


def pay_down(owed: Breakdown, payments: Sequence[Payment]) -> tuple[Breakdown, list[Payment]]:
    """Apply payments to a fixed amount owed (late fee, interest, plan fee, then principal); the rest is returned."""
    parts = [owed.late_fee, owed.interest, owed.plan_fee, owed.principal]
    rest: list[Payment] = []
    for p in sorted(payments, key=lambda p: p.paid_on):
        left = p.amount
        for i, part in enumerate(parts):
            take = min(left, part)
            parts[i] -= take
            left -= take
        if left:
            rest.append(Payment(p.paid_on, left))
    late, interest, plan_fee, principal = parts
    return Breakdown(principal=principal, interest=interest, late_fee=late, plan_fee=plan_fee), rest


def promise_outcome(
    amount: int, due: date, payments: Sequence[Payment], paid_before: int, as_of: date
) -> PromiseStatus:
    """Kept only when the ledger shows `amount` paid (after the promise was made) by `due`;
    broken from the day after `due`; open until then."""
    paid = sum(p.amount for p in plan_payments(payments, paid_before) if p.paid_on <= min(due, as_of))
    if paid >= amount:
        return "kept"
    return "broken" if as_of > due else "open"


@dataclass(frozen=True)
class Agreement:
    """The plan that governs an account: its kind and terms."""

    kind: str  # installment | personalized | deferment
    terms: AgreementTerms


def _split_fee(amount: int, rows: Sequence[RowState], agreed: Sequence[AgreedRow], as_of: date) -> Breakdown:
    """An instalment amount itemised: the fee of the rows it pays, the rest as principal."""
    fee = sum(a.fee for s, a in zip(rows, agreed, strict=True) if s.status != "paid" and s.due_date <= as_of)
    if not fee:
        upcoming = next((a for s, a in zip(rows, agreed, strict=True) if s.status != "paid"), None)
        fee = upcoming.fee if upcoming else 0
    fee = min(fee, amount)
    return Breakdown(principal=amount - fee, interest=0, late_fee=0, plan_fee=fee)


def position_under(
    terms: AccountTerms,
    payments: Sequence[Payment],
    as_of: date,
    fees: FeePolicy,
    rules: AgreementPolicy,
    agreement: Agreement | None,
) -> tuple[AccountPosition, PlanState | None]:
    """Where the account stands on `as_of`, honouring the plan that governs it (if any).

    Deferment: the statement's own position, with no new 违约金 during it when the policy says so;
    while it runs, the amount due is the agreed amount and the account is not overdue.
    Installment / personalised: the schedule is what is owed; once broken, what is left of it is
    owed at once and interest and 违约金 resume on its principal (`left_at_break`).
    """
    if agreement is None:
        return position(terms, payments, as_of, fees), None
    plan = agreement.terms
    state = plan_state(plan, payments, as_of, rules, fees.daily_interest_rate, fees.late_fee.rate)
    if agreement.kind == "deferment":
        pay_on = plan.rows[-1].due_date
        pause = (plan.start, pay_on) if rules.deferment_late_fees == "none" else None
        pos = position(terms, payments, as_of, fees, late_fee_pause=pause)
        if state.status == "active":
            principal = min(state.amount_due, pos.amount_due.principal)
            late = min(state.amount_due - principal, pos.outstanding.late_fee)
            due = Breakdown(principal=principal, interest=state.amount_due - principal - late, late_fee=late)
            pos = replace(pos, overdue_days=state.overdue_days, bucket=bucket_for(state.overdue_days), amount_due=due)
        return pos, state
    paid_total = sum(p.amount for p in payments if p.paid_on <= as_of)
    if state.status != "broken":
        paid_in = plan_payments([p for p in payments if p.paid_on <= as_of], plan.paid_before)
        left, _ = pay_down(_plan_parts(plan), paid_in)
        if state.status == "completed":
            left = Breakdown(0, 0, 0)
        left = replace(
            left, interest=left.interest + state.extra_interest, late_fee=left.late_fee + state.extra_late_fees
        )
        return (
            AccountPosition(
                as_of=as_of,
                overdue_days=state.overdue_days,
                bucket=bucket_for(state.overdue_days),
                amount_due=_split_fee(state.amount_due, state.rows, plan.rows, as_of),
                outstanding=left,
                paid_total=paid_total,
                missed_cycles=state.missed_periods,
                interest_free=False,
                credit=state.credit,
            ),
            state,
        )
    broke = state.ended_on
    assert broke is not None
    before = plan_state(plan, payments, broke - timedelta(days=1), rules, fees.daily_interest_rate, fees.late_fee.rate)
    left = left_at_break(plan, before, broke)
    after = [p for p in plan_payments(payments, plan.paid_before) if broke <= p.paid_on <= as_of]
    fixed, rest = pay_down(replace(left, principal=0), after)
    # The statement's terms resume on what is left of the principal: interest from the day the plan
    # broke (no interest-free period to keep), and a minimum of the statement's share billed on the
    # card's next statement date, due on that cycle's due date: a 违约金 only if that minimum is
    # then left unpaid (never on a minimum no statement billed).
    share = Decimal(terms.minimum_payment) / terms.statement_balance if terms.statement_balance else Decimal(1)
    billed_on, due_on = _next_cycle(terms, broke)
    resumed = AccountTerms(
        left.principal,
        round_fen(left.principal * share),
        billed_on,
        due_on,
        interest_start=broke,
        interest_free_possible=False,
    )
    again = position(resumed, rest, as_of, fees) if left.principal else None
    outstanding = Breakdown(
        principal=again.outstanding.principal if again else 0,
        interest=fixed.interest + (again.outstanding.interest if again else 0),
        late_fee=fixed.late_fee + (again.outstanding.late_fee if again else 0),
        plan_fee=fixed.plan_fee,
    )
    credit = again.credit if again else sum(p.amount for p in rest)
    first_missed = min((r.due_date for r in state.rows if r.status == "missed"), default=None)
    overdue = (as_of - first_missed).days if first_missed and outstanding.total else 0
    return (
        AccountPosition(
            as_of=as_of,
            overdue_days=overdue,
            bucket=bucket_for(overdue),
            amount_due=outstanding,
            outstanding=outstanding,
            paid_total=paid_total,
            missed_cycles=state.missed_periods,
            interest_free=False,
            credit=credit,
        ),
        state,
    )


def _next_cycle(terms: AccountTerms, day: date) -> tuple[date, date]:
    """The card's first statement date on or after `day`, and that cycle's due date."""
    k = 0
    while add_months(terms.statement_date, k) < day:
        k += 1
    return add_months(terms.statement_date, k), add_months(terms.due_date, k)


def _plan_parts(plan: AgreementTerms) -> Breakdown:
    return Breakdown(
        principal=plan.principal, interest=plan.carried_interest, late_fee=plan.carried_fees, plan_fee=plan.total_fee
    )
