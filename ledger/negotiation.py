"""What may be offered to an account, and writing agreed plans and promises.

The bot and the agent console both come here, so a plan made in chat and one made
by an agent are the same thing. Creation is idempotent on a caller-supplied key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.accounts import (
    account_payments,
    audit,
    fee_policy_for,
    get_account,
    governing_plan,
    new_id,
    position_for,
    statement_terms,
)
from ledger.clock import Clock
from ledger.errors import Conflict, OfferNotAllowed
from ledger.fees import position
from ledger.models import Hold, Plan, PlanRow, Promise
from ledger.plans import (
    Owed,
    PlanOffer,
    deferment_offer,
    installment_offer,
    personalized_for_capacity,
    personalized_offer,
    validate_promise,
)
from ledger.policy import AgreementPolicy, BucketPolicy, Policy


@dataclass(frozen=True)
class Situation:
    """The facts negotiation needs: what is owed and the bucket's rules."""

    bucket: str
    rules: BucketPolicy
    amount_due: int
    outstanding: int
    minimum_left: int
    on_hold: bool
    owed: Owed = field(default_factory=lambda: Owed(0))  # what a plan would take in, itemised
    agreements: AgreementPolicy = field(default_factory=AgreementPolicy)
    paid_total: int = 0
    # What clears the overdue if paid on a given day; `deferred`: under the policy's fee treatment
    # during a deferment agreed from today to that day.
    due_on: Callable[[date, bool], int] | None = field(default=None, compare=False)
    plan_status: str | None = None  # of the plan that governs the account now, if any

    def amount_due_on(self, day: date, deferred: bool = False) -> int:
        return self.due_on(day, deferred) if self.due_on else self.amount_due


def situation(session: Session, account_id: str, policy: Policy, clock: Clock) -> Situation:
    account = get_account(session, account_id)
    today = clock.today()
    statement = account.statements[-1]
    payments = account_payments(session, account)
    plans = list(session.scalars(select(Plan).where(Plan.account_pk == account.id)))
    plan = governing_plan(plans)
    pos, _ = position_for(statement, payments, plan, policy, account, today)
    held = session.scalar(select(Hold.id).where(Hold.account_pk == account.id, Hold.active)) is not None

    fees = fee_policy_for(account, policy)

    def due_on(day: date, deferred: bool) -> int:
        if (plan is not None and plan.type != "deferment") or not deferred:
            return position_for(statement, payments, plan, policy, account, day)[0].amount_due.total
        start = min(today, plan.created_on) if plan is not None else today
        pause = (start, day) if policy.agreements.deferment_late_fees == "none" else None
        return position(statement_terms(statement), payments, day, fees, late_fee_pause=pause).amount_due.total

    out = pos.outstanding
    return Situation(
        pos.bucket,
        policy.for_bucket(pos.bucket),
        pos.amount_due.total,
        out.total,
        pos.amount_due.principal,
        held,
        owed=Owed(out.principal, out.interest + out.plan_fee, out.late_fee),
        agreements=policy.agreements,
        paid_total=pos.paid_total,
        due_on=due_on,
        plan_status=plan.status if plan is not None else None,
    )


def installment_offers(sit: Situation, today: date) -> list[PlanOffer]:
    """Every installment the policy allows for this account, fewest periods first."""
    if not sit.rules.allows("installment") or sit.outstanding <= 0:
        return []
    return [
        installment_offer(sit.owed, n, sit.rules, today, sit.agreements.instalment_fee_base)
        for n in sorted(sit.rules.installment_fee_rates)
    ]


def offer_for(
    sit: Situation,
    kind: str,
    today: date,
    periods: int | None = None,
    pay_on: date | None = None,
    monthly: int | None = None,
) -> PlanOffer:
    """One concrete offer; OfferNotAllowed carries the nearest allowed terms."""
    if sit.on_hold:
        raise OfferNotAllowed("the account is on hold; a colleague will follow up")
    base = sit.agreements.instalment_fee_base
    if kind == "installment":
        return installment_offer(
            sit.owed, periods or min(sit.rules.installment_fee_rates, default=3), sit.rules, today, base
        )
    if kind == "deferment":
        if pay_on is None:
            raise OfferNotAllowed("a deferment needs a date")
        return deferment_offer(sit.amount_due_on(pay_on, deferred=True), pay_on, sit.rules, today)
    if kind == "personalized":
        rate: Decimal = sit.agreements.personalized_fee_rate
        if monthly is not None:
            return personalized_for_capacity(sit.owed, monthly, sit.rules, today, rate, base)
        return personalized_offer(sit.owed, periods or sit.rules.personalized_max_periods, sit.rules, today, rate, base)
    raise OfferNotAllowed(f"unknown plan type {kind}")


def create_plan(
    session: Session,
    account_id: str,
    offer: PlanOffer,
    created_via: str,
    idempotency_key: str,
    clock: Clock,
    actor: str = "bot",
) -> tuple[Plan, bool]:
    """Write an agreed plan once: a repeated key returns the first plan; one open plan per account."""
    account = get_account(session, account_id)
    existing = session.scalar(select(Plan).where(Plan.idempotency_key == idempotency_key))
    if existing is not None:
        return existing, False
    status = "pending_approval" if offer.needs_approval else "active"
    plan = Plan(
        plan_id=new_id("pl"),
        account_pk=account.id,
        type=offer.type,
        status=status,
        open_slot=1,
        principal=offer.principal,
        periods=offer.periods,
        fee_rate_per_period=offer.fee_rate_per_period,
        total_fee=offer.total_fee,
        apr=offer.apr,
        created_via=created_via,
        idempotency_key=idempotency_key,
        created_on=clock.today(),
        fee_base=offer.fee_base,
        carried_interest=offer.carried_interest,
        carried_fees=offer.carried_fees,
        paid_before=sum(p.amount for p in account_payments(session, account)),
        rows=[
            PlanRow(seq=i + 1, due_date=r.due_date, amount=r.amount, fee=r.fee, status="due", paid=0)
            for i, r in enumerate(offer.schedule)
        ],
    )
    try:
        with session.begin_nested():
            session.add(plan)
    except IntegrityError:
        same = session.scalar(select(Plan).where(Plan.idempotency_key == idempotency_key))
        if same is not None:
            return same, False
        raise Conflict("the account already has an open plan", account_id=account_id) from None
    audit(session, actor, "plan.create", account_id, plan_id=plan.plan_id, type=offer.type, status=status)
    return plan, True


def approve_plan(session: Session, plan_id: str, agent: str) -> Plan:
    plan = session.scalar(select(Plan).where(Plan.plan_id == plan_id).with_for_update())
    if plan is None or plan.status != "pending_approval":
        raise Conflict("the plan is not waiting for approval", plan_id=plan_id)
    plan.status, plan.approved_by = "active", agent
    audit(session, agent, "plan.approve", plan_id)
    return plan


def create_promise(
    session: Session,
    account_id: str,
    amount: int,
    due: date,
    created_via: str,
    idempotency_key: str,
    policy: Policy,
    clock: Clock,
    actor: str = "bot",
) -> tuple[Promise, bool]:
    """Record a promise to pay, validated against what is owed and the policy's window."""
    existing = session.scalar(select(Promise).where(Promise.idempotency_key == idempotency_key))
    if existing is not None:
        return existing, False
    sit = situation(session, account_id, policy, clock)
    # What is owed by the promised date may be more than today (interest runs until then).
    owed = max(sit.outstanding, sit.amount_due_on(due)) if due >= clock.today() else sit.outstanding
    validate_promise(amount, due, clock.today(), owed, sit.rules)
    account = get_account(session, account_id)
    promise = Promise(
        promise_id=new_id("pp"),
        account_pk=account.id,
        amount=amount,
        due_date=due,
        created_via=created_via,
        idempotency_key=idempotency_key,
        created_on=clock.today(),
        paid_before=sum(p.amount for p in account_payments(session, account)),
    )
    try:
        with session.begin_nested():
            session.add(promise)
    except IntegrityError:
        same = session.scalar(select(Promise).where(Promise.idempotency_key == idempotency_key))
        assert same is not None
        return same, False
    audit(
        session, actor, "promise.create", account_id, promise_id=promise.promise_id, amount=amount, due=due.isoformat()
    )
    return promise, True
