"""What may be offered to an account, and writing agreed plans and promises.

The bot and the agent console both come here, so a plan made in chat and one made
by an agent are the same thing. Creation is idempotent on a caller-supplied key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

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
from ledger.approvals import ApprovalDecision, ApprovalFacts, ApprovalRefused, decide_approval
from ledger.clock import Clock
from ledger.errors import Conflict, OfferNotAllowed, ValidationFailed
from ledger.fees import position
from ledger.models import Account, Conversation, HandoffTicket, Hold, Plan, PlanRow, Promise
from ledger.plans import (
    Owed,
    PlanOffer,
    deferment_offer,
    installment_offer,
    judge_promise,
    latest_deferment,
    personalized_for_capacity,
    personalized_offer,
    validate_promise,
)
from ledger.policy import AgreementPolicy, ApprovalPolicy, BucketPolicy, Policy


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
    plan = governing_plan(plans, statement)
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
        if n <= sit.owed.total  # every row at least 1 fen
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


# --- what to propose when a holder asks (pure, over a Situation) -------------------------------
# Each returns an outcome the bot and the agent console only put into words.

InstallmentOutcome = Literal["on_hold", "settled", "none", "options", "offer", "nearest"]


@dataclass(frozen=True)
class InstallmentProposal:
    """`options`: every allowed offer; `offer`: the one asked for; `nearest`: the periods asked for are
    not offered (`requested`, `allowed_periods`) and `offer` is the nearest that is; `none`: nothing to offer."""

    outcome: InstallmentOutcome
    offers: tuple[PlanOffer, ...] = ()
    offer: PlanOffer | None = None
    requested: int | None = None
    allowed_periods: tuple[int, ...] = ()


def propose_installment(sit: Situation, today: date, periods: int | None = None) -> InstallmentProposal:
    """The installments to put to the holder: all of them, the one asked for, or the nearest allowed."""
    if sit.on_hold:
        return InstallmentProposal("on_hold")
    if sit.outstanding <= 0:
        return InstallmentProposal("settled")
    if periods is None:
        offers = tuple(installment_offers(sit, today))
        return InstallmentProposal("options", offers=offers) if offers else InstallmentProposal("none")
    try:
        return InstallmentProposal("offer", offer=offer_for(sit, "installment", today, periods=periods))
    except OfferNotAllowed as exc:
        nearest = exc.details.get("nearest")
        if not nearest:
            return InstallmentProposal("none", requested=periods)
        return InstallmentProposal(
            "nearest",
            offer=offer_for(sit, "installment", today, periods=nearest),
            requested=periods,
            allowed_periods=tuple(exc.details.get("allowed_periods", ())),
        )


DefermentOutcome = Literal["on_hold", "not_allowed", "offer", "nearest"]


@dataclass(frozen=True)
class DefermentProposal:
    """`offer`: to the day asked (or the latest allowed when none was); `nearest`: the day asked cannot be
    offered, `offer` is to the latest day that can."""

    outcome: DefermentOutcome
    offer: PlanOffer | None = None


def propose_deferment(sit: Situation, today: date, asked: date | None = None) -> DefermentProposal:
    """A deferment within the bucket's limit; the latest allowed day when none is asked or the asked one is not."""
    if sit.on_hold:
        return DefermentProposal("on_hold")
    if not sit.rules.allows("deferment") or sit.amount_due <= 0:
        return DefermentProposal("not_allowed")
    latest = latest_deferment(sit.rules, today)
    try:
        return DefermentProposal("offer", offer_for(sit, "deferment", today, pay_on=asked or latest))
    except (OfferNotAllowed, ValidationFailed):
        return DefermentProposal("nearest", offer_for(sit, "deferment", today, pay_on=latest))


PersonalizedOutcome = Literal["on_hold", "settled", "not_offered", "too_little", "offer"]


@dataclass(frozen=True)
class PersonalizedProposal:
    """`too_little`: no plan up to `max_periods` fits the monthly amount; `min_monthly` would."""

    outcome: PersonalizedOutcome
    offer: PlanOffer | None = None
    min_monthly: int = 0
    max_periods: int = 0


def propose_personalized(sit: Situation, today: date, monthly: int) -> PersonalizedProposal:
    """A personalised plan sized to what the holder can pay a month (fewest periods that fit)."""
    if sit.on_hold:
        return PersonalizedProposal("on_hold")
    if sit.outstanding <= 0:
        return PersonalizedProposal("settled")
    try:
        return PersonalizedProposal("offer", offer_for(sit, "personalized", today, monthly=monthly))
    except OfferNotAllowed as exc:
        if "min_monthly" not in exc.details:
            return PersonalizedProposal("not_offered")
        return PersonalizedProposal(
            "too_little", min_monthly=exc.details["min_monthly"], max_periods=exc.details["max_periods"]
        )


PromiseOutcome = Literal["settled", "need_date", "past", "too_late", "too_much", "ok"]


@dataclass(frozen=True)
class PromiseProposal:
    """A promise to put to the holder for confirmation, or what is wrong with it. `amount` is what they
    named, else what clears the overdue if paid on the day (or the whole balance)."""

    outcome: PromiseOutcome
    amount: int = 0
    due: date | None = None
    latest: date | None = None  # past, too_late: the latest date the policy allows
    outstanding: int = 0  # too_much: the whole balance, to name


def propose_promise(sit: Situation, today: date, amount: int | None, due: date | None) -> PromiseProposal:
    """Check a promise before the holder confirms it, by the rules `create_promise` will apply."""
    default = (sit.amount_due_on(due) if due is not None and due >= today else sit.amount_due) or sit.outstanding
    fen = amount or default
    if fen <= 0:
        return PromiseProposal("settled")
    if due is None:
        return PromiseProposal("need_date", amount=fen)
    verdict = judge_promise(fen, due, today, promise_ceiling(sit, due, today), sit.rules)
    if verdict.problem == "too_much":
        return PromiseProposal("too_much", amount=fen, due=due, outstanding=sit.outstanding)
    if verdict.problem in ("past", "too_late"):
        return PromiseProposal(verdict.problem, amount=fen, due=due, latest=verdict.latest)
    return PromiseProposal("ok", amount=fen, due=due)


def promise_ceiling(sit: Situation, due: date, today: date) -> int:
    """The most a promise for `due` may be: what is owed by then may be more than today (interest runs)."""
    return max(sit.outstanding, sit.amount_due_on(due)) if due >= today else sit.outstanding


HardshipOutcome = Literal["on_hold", "personalized", "options"]


@dataclass(frozen=True)
class HardshipProposal:
    """After hardship: a personalised plan (up to `max_periods`, for a person to approve) where the
    bucket allows one, else the usual options (installments, deferment, a person)."""

    outcome: HardshipOutcome
    max_periods: int = 0


def propose_after_hardship(sit: Situation) -> HardshipProposal:
    if sit.on_hold:
        return HardshipProposal("on_hold")
    if sit.rules.allows("personalized"):
        return HardshipProposal("personalized", sit.rules.personalized_max_periods)
    return HardshipProposal("options")


def fee_waiver_route(sit: Situation) -> Literal["review", "no"]:
    """A waiver is never granted by the bot: a person reviews it where the bucket allows waivers."""
    return "review" if sit.rules.allows("fee_waiver") else "no"


def create_plan(
    session: Session,
    account_id: str,
    offer: PlanOffer,
    created_via: str,
    idempotency_key: str,
    clock: Clock,
    actor: str = "bot",
) -> tuple[Plan, bool]:
    """Write an agreed plan once: a repeated key returns the plan it made while that plan is open
    (pending or active); one open plan per account.

    A key names the terms as agreed in one conversation, so the same terms agreed again after the
    plan ended (broken, completed, cancelled) are a new agreement, not a retry: they get a new plan,
    under the key with `#2`, `#3`... appended."""
    account = get_account(session, account_id)
    latest, n = None, 1
    while (
        found := session.scalar(select(Plan).where(Plan.idempotency_key == _nth_key(idempotency_key, n)))
    ) is not None:
        latest, n = found, n + 1
    if latest is not None and (latest.status in OPEN_PLAN or latest.account_pk != account.id):
        return latest, False
    idempotency_key = _nth_key(idempotency_key, n)
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


OPEN_PLAN = ("proposed", "pending_approval", "active")
_KEY_LENGTH = 128  # plans.idempotency_key


def _nth_key(key: str, n: int) -> str:
    """The key of the n-th plan agreed on the same terms under `key` (the first keeps `key` itself)."""
    if n == 1:
        return key
    suffix = f"#{n}"
    return key[: _KEY_LENGTH - len(suffix)] + suffix


def approve_plan(
    session: Session, plan_id: str, username: str, role: str, reason: str, rules: ApprovalPolicy
) -> tuple[Plan, ApprovalDecision]:
    """Approve a plan waiting for it, if `decide_approval` lets this principal; audited with who,
    in what role, on what basis and why (`reason`, the approver's words). ApprovalRefused otherwise."""
    plan = session.scalar(select(Plan).where(Plan.plan_id == plan_id).with_for_update())
    if plan is None or plan.status != "pending_approval":
        raise Conflict("the plan is not waiting for approval", plan_id=plan_id)
    holds = session.scalar(
        select(HandoffTicket.id)
        .join(Conversation, HandoffTicket.conversation_pk == Conversation.id)
        .where(
            Conversation.account_pk == plan.account_pk,
            HandoffTicket.status == "claimed",
            HandoffTicket.agent == username,
        )
        .limit(1)
    )
    decision = decide_approval(ApprovalFacts(role, holds is not None, plan.periods, plan.principal), rules)
    if not decision.allowed:
        raise ApprovalRefused(
            "a supervisor, or the agent holding the conversation within its limit, approves this plan",
            plan_id=plan_id,
            basis=decision.basis,
        )
    plan.status, plan.approved_by = "active", username
    audit(session, username, "plan.approve", plan_id, role=role, basis=decision.basis, reason=reason)
    return plan, decision


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
    validate_promise(amount, due, clock.today(), promise_ceiling(sit, due, clock.today()), sit.rules)
    account = get_account(session, account_id)
    promise = Promise(
        promise_id=new_id("pp"),
        account_pk=account.id,
        amount=amount,
        due_date=due,
        created_via=created_via,
        idempotency_key=idempotency_key,
        created_on=clock.today(),
        paid_before=counted_from(session, account, due),
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


def counted_from(session: Session, account: Account, due: date) -> int:
    """Where a new promise's money starts in the account's payments: after everything paid so far and
    after every open promise falling due on or before it, so that of two open promises ("先还500，剩下的
    10号还清") the second is kept only by money beyond the first."""
    paid = sum(p.amount for p in account_payments(session, account))
    earlier = session.scalars(
        select(Promise).where(Promise.account_pk == account.id, Promise.status == "open", Promise.due_date <= due)
    )
    return max([paid, *(p.paid_before + p.amount for p in earlier)])


def promised_unpaid(session: Session, account_id: str) -> int:
    """Money open promises still wait for (beyond what has been paid): not to be asked for twice."""
    account = get_account(session, account_id)
    paid = sum(p.amount for p in account_payments(session, account))
    ends = [
        p.paid_before + p.amount
        for p in session.scalars(select(Promise).where(Promise.account_pk == account.id, Promise.status == "open"))
    ]
    return max(0, max(ends, default=paid) - paid)


def create_promises(
    session: Session,
    account_id: str,
    parts: list[tuple[int, date]],
    created_via: str,
    idempotency_key: str,
    policy: Policy,
    clock: Clock,
    actor: str = "bot",
) -> list[Promise]:
    """An arrangement in parts (a payment now, the rest on a date): one promise each, in date order, in
    the caller's one transaction, idempotent on `idempotency_key`; each counted after the one before."""
    made = []
    for i, (amount, due) in enumerate(sorted(parts, key=lambda p: p[1])):
        promise, _ = create_promise(
            session, account_id, amount, due, created_via, f"{idempotency_key}:{i + 1}", policy, clock, actor
        )
        session.flush()
        made.append(promise)
    return made
