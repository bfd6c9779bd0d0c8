"""Accounts: import, the account view (position, plans, promises), payments."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from ledger.agreements import AgreedRow, Agreement, AgreementTerms, PlanState, position_under, promise_outcome
from ledger.clock import Clock
from ledger.errors import Conflict, NotFound, ValidationFailed
from ledger.fees import AccountPosition, AccountTerms, Payment
from ledger.kinds import ContactChannel, PreferenceValue, PromiseStatus
from ledger.models import (
    Account,
    AuditLog,
    Cardholder,
    Complaint,
    ContactPreference,
    Hold,
    LedgerEntry,
    Plan,
    PlanRow,
    Promise,
    Statement,
)
from ledger.money import fen_to_yuan
from ledger.policy import FeePolicy, Policy

HOLD_FLAGS = ("deceased", "legal_hold", "dispute")
DEFAULT_PREFERENCES: dict[ContactChannel, PreferenceValue] = {
    "sms": "allowed",
    "calls": "allowed",
    "third_party": "forbidden",
}


@dataclass(frozen=True)
class AccountRecord:
    """An import record, already parsed: money in fen, dates as dates."""

    account_id: str
    holder_name: str
    phone: str
    id_last4: str
    card_last4: str
    credit_limit: int
    statement_balance: int
    minimum_payment: int
    statement_date: date
    due_date: date
    paid_since_statement: int
    daily_interest_rate: Decimal | None = None
    late_fee_rate: Decimal | None = None
    flags: tuple[str, ...] = ()
    timezone: str = "Asia/Shanghai"  # the holder's; the contact window is in their local time
    interest_start: date | None = None  # first posting date of the statement's charges, when known


@dataclass
class AccountView:
    account: Account
    statement: Statement
    position: AccountPosition
    plans: list[Plan]
    promises: list[tuple[Promise, PromiseStatus]]  # with the status as of today
    plan_states: dict[str, PlanState]  # by plan_id, for plans that have begun (active, completed, broken)
    # value, when it changed, who asked, and a restricted channel's rules (windows, places)
    preferences: dict[ContactChannel, tuple[PreferenceValue, datetime, str | None, dict[str, object] | None]]
    holds: list[Hold]
    complaints: list[Complaint]
    flags: list[str] = field(default_factory=list)


class PaymentConflict(Conflict):
    """A payment reference already posted with another amount: the second amount is not taken."""

    code = "payment_conflict"


class AgreementRunning(Conflict):
    """A new statement while a plan runs: the plan's schedule is the bill until it ends."""


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(6)}"


def audit(
    session: Session, actor: str, action: str, subject: str, at: datetime | None = None, **detail: object
) -> None:
    """One audit row; `at` from the caller's clock where a rule later counts rows by time."""
    row = AuditLog(actor=actor, action=action, subject=subject, detail=detail)
    if at is not None:
        row.at = at
    session.add(row)


def validate_record(rec: AccountRecord) -> None:
    if rec.minimum_payment > rec.statement_balance:
        raise ValidationFailed("minimum_payment exceeds statement_balance", field="minimum_payment")
    if rec.due_date < rec.statement_date:
        raise ValidationFailed("due_date is before statement_date", field="due_date")
    if rec.paid_since_statement > rec.statement_balance:
        raise ValidationFailed("paid_since_statement exceeds statement_balance", field="paid_since_statement")
    if rec.interest_start is not None and rec.interest_start > rec.statement_date:
        raise ValidationFailed("interest_start is after statement_date", field="interest_start")
    bad = [f for f in rec.flags if f not in HOLD_FLAGS]
    if bad:
        raise ValidationFailed("unknown flags", field="flags", unknown=bad)
    try:
        ZoneInfo(rec.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed("unknown time zone", field="timezone", timezone=rec.timezone) from None


def upsert_account(session: Session, rec: AccountRecord, actor: str = "api") -> Account:
    """Create or replace an account from an import record (its statement replaced, history kept)."""
    validate_record(rec)
    account = session.scalar(select(Account).where(Account.account_id == rec.account_id).with_for_update(of=Account))
    if account is None:
        # The person's preferences (same phone, another card) carry over to the new card.
        known = {
            p.channel: p
            for p in session.scalars(
                select(ContactPreference)
                .join(Cardholder, Cardholder.id == ContactPreference.cardholder_id)
                .where(Cardholder.phone == rec.phone)
                .order_by(ContactPreference.changed_at)
            )
        }
        holder = Cardholder(name=rec.holder_name, phone=rec.phone, id_last4=rec.id_last4, timezone=rec.timezone)
        session.add(holder)
        session.flush()
        account = Account(
            account_id=rec.account_id, cardholder_id=holder.id, card_last4=rec.card_last4, credit_limit=rec.credit_limit
        )
        session.add(account)
        session.flush()
        for channel, value in {**DEFAULT_PREFERENCES, **{c: p.value for c, p in known.items()}}.items():
            pref = ContactPreference(cardholder_id=holder.id, channel=channel, value=value)
            was = known.get(channel)
            if was is not None:
                pref.value, pref.changed_at, pref.asked_by, pref.source, pref.rules = (
                    was.value,
                    was.changed_at,
                    was.asked_by,
                    was.source,
                    was.rules,
                )
            session.add(pref)
    else:
        refuse_new_statement_during_a_plan(session, account, rec)
        holder = account.cardholder
        holder.name, holder.phone, holder.id_last4 = rec.holder_name, rec.phone, rec.id_last4
        holder.timezone = rec.timezone
        account.card_last4, account.credit_limit = rec.card_last4, rec.credit_limit
        account.statements.clear()
    account.daily_interest_rate = rec.daily_interest_rate
    account.late_fee_rate = rec.late_fee_rate
    account.statements.append(
        Statement(
            statement_date=rec.statement_date,
            due_date=rec.due_date,
            statement_balance=rec.statement_balance,
            minimum_payment=rec.minimum_payment,
            paid_since_statement=rec.paid_since_statement,
            interest_start=rec.interest_start,
        )
    )
    active = {h.kind: h for h in session.scalars(select(Hold).where(Hold.account_pk == account.id, Hold.active))}
    for kind in HOLD_FLAGS:
        if kind in rec.flags and kind not in active:
            session.add(Hold(account_pk=account.id, kind=kind, reason="import flag"))
        elif kind not in rec.flags and kind in active and active[kind].reason == "import flag":
            active[kind].active = False
    audit(session, actor, "account.upsert", rec.account_id)
    session.flush()
    return account


def _statement_of(rec: AccountRecord) -> tuple[object, ...]:
    return (
        rec.statement_date,
        rec.due_date,
        rec.statement_balance,
        rec.minimum_payment,
        rec.paid_since_statement,
        rec.interest_start,
    )


def refuse_new_statement_during_a_plan(session: Session, account: Account, rec: AccountRecord) -> None:
    """The bank's rule here: while a plan is pending or active, its schedule replaces the statement
    cycle, and the payments it counts (as a promise does) are those made since the statement it was
    agreed on; a new statement would drop them. So a re-import may change the holder's details but
    not the statement until the plan has ended (completed or broken) or been cancelled, and no
    promise is open."""
    current = account.statements[-1] if account.statements else None
    if current is None:
        return
    same = (
        current.statement_date,
        current.due_date,
        current.statement_balance,
        current.minimum_payment,
        current.paid_since_statement,
        current.interest_start,
    ) == _statement_of(rec)
    if same:
        return
    running = session.scalar(
        select(Plan).where(Plan.account_pk == account.id, Plan.status.in_(("pending_approval", "active")))
    )
    if running is not None:
        raise AgreementRunning(
            "a plan is running on this account: a new statement can be imported once it has ended",
            account_id=account.account_id,
            plan_id=running.plan_id,
            plan_status=running.status,
        )
    promised = session.scalar(select(Promise).where(Promise.account_pk == account.id, Promise.status == "open"))
    if promised is not None:
        raise AgreementRunning(
            "a promise to pay is open on this account: a new statement can be imported after its date",
            account_id=account.account_id,
            promise_id=promised.promise_id,
            promise_due_date=promised.due_date.isoformat(),
        )


def get_account(session: Session, account_id: str) -> Account:
    account = session.scalar(select(Account).where(Account.account_id == account_id))
    if account is None:
        raise NotFound("no such account", account_id=account_id)
    return account


def fee_policy_for(account: Account, policy: Policy) -> FeePolicy:
    """The policy's fees, with the account's own contract rates where the import gave them."""
    fees = policy.fees
    if account.daily_interest_rate is not None:
        fees = fees.model_copy(update={"daily_interest_rate": account.daily_interest_rate})
    if account.late_fee_rate is not None:
        late = fees.late_fee.model_copy(update={"rate": account.late_fee_rate, "escalated_rate": account.late_fee_rate})
        fees = fees.model_copy(update={"late_fee": late})
    return fees


GOVERNING = ("active", "completed", "broken")


def plan_terms(plan: Plan) -> AgreementTerms:
    """A stored plan as the pure agreement functions see it."""
    return AgreementTerms(
        start=plan.created_on,
        principal=plan.principal - plan.carried_interest - plan.carried_fees,
        carried_interest=plan.carried_interest,
        carried_fees=plan.carried_fees,
        rows=tuple(AgreedRow(r.due_date, r.amount, r.fee) for r in plan.rows),
        paid_before=plan.paid_before,
    )


def statement_terms(statement: Statement) -> AccountTerms:
    return AccountTerms(
        statement.statement_balance,
        statement.minimum_payment,
        statement.statement_date,
        statement.due_date,
        interest_start=statement.interest_start,
    )


def statement_payments(statement: Statement, entries: Iterable[tuple[date, int]]) -> list[Payment]:
    """The repayments a statement counts: the import's own first, then those posted on or after its date."""
    pays = [Payment(statement.statement_date, statement.paid_since_statement)] if statement.paid_since_statement else []
    pays += [Payment(day, amount) for day, amount in entries if day >= statement.statement_date]
    return pays


def account_payments(session: Session, account: Account) -> list[Payment]:
    """Every repayment on the account's current statement, the import's own first."""
    statement = account.statements[-1]
    entries = session.execute(
        select(LedgerEntry.effective_date, LedgerEntry.amount).where(
            LedgerEntry.account_pk == account.id,
            LedgerEntry.kind == "payment",
            LedgerEntry.effective_date >= statement.statement_date,
        )
    )
    return statement_payments(statement, ((day, amount) for day, amount in entries))


def governing_plan(plans: list[Plan], statement: Statement) -> Plan | None:
    """The latest plan that has begun on this statement: its terms took in what was owed when it was
    agreed. A plan that ended before a newer statement was imported no longer governs: that
    statement already says what is owed (its figures stay as stored on its rows)."""
    begun = [p for p in plans if p.status in GOVERNING and on_statement(p, statement)]
    return max(begun, key=lambda p: p.id) if begun else None


def on_statement(plan: Plan, statement: Statement) -> bool:
    """Whether a plan belongs to this statement: still running, or agreed on or after its date."""
    return plan.status == "active" or plan.created_on >= statement.statement_date


def position_for(
    statement: Statement, payments: list[Payment], plan: Plan | None, policy: Policy, account: Account, today: date
) -> tuple[AccountPosition, PlanState | None]:
    agreement = Agreement(plan.type, plan_terms(plan)) if plan is not None else None
    return position_under(
        statement_terms(statement), payments, today, fee_policy_for(account, policy), policy.agreements, agreement
    )


def account_position(
    session: Session, account: Account, policy: Policy, today: date
) -> tuple[Statement, AccountPosition]:
    """The position of the account's current statement as of `today`, under its plan if one governs."""
    statement = account.statements[-1]
    plans = list(session.scalars(select(Plan).where(Plan.account_pk == account.id)))
    plan = governing_plan(plans, statement)
    pos, _ = position_for(statement, account_payments(session, account), plan, policy, account, today)
    return statement, pos


def promise_status(promise: Promise, paid_by_due: int, today: date) -> str:
    """Kept only when `paid_by_due` (paid since the promise, by its date) covers it; broken the day after."""
    if promise.status != "open":
        return promise.status
    if paid_by_due >= promise.amount:
        return "kept"
    return "broken" if today > promise.due_date else "open"


def paid_between(session: Session, account: Account, start: date, end: date) -> int:
    entries = session.scalars(
        select(LedgerEntry.amount).where(
            LedgerEntry.account_pk == account.id,
            LedgerEntry.kind == "payment",
            LedgerEntry.effective_date >= start,
            LedgerEntry.effective_date <= end,
        )
    )
    return sum(entries)


@dataclass
class Changes:
    """What bringing an account's agreements up to a day changed."""

    rows: int = 0
    row_updates: list[dict[str, object]] = field(default_factory=list)  # for one executemany UPDATE
    completed: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    promises_broken: list[str] = field(default_factory=list)


def sync_agreements(session: Session, account: Account, policy: Policy, today: date) -> Changes:
    """Persist what the ledger and the calendar say on `today`: rows paid or missed, the plan completed
    or broken (its open slot freed, a notice due), promises kept or broken. Running it twice is harmless."""
    payments = account_payments(session, account)
    plans = list(session.scalars(select(Plan).where(Plan.account_pk == account.id)))
    promises = list(session.scalars(select(Promise).where(Promise.account_pk == account.id, Promise.status == "open")))
    changes = apply_agreements(session, account, payments, plans, promises, policy, today)
    write_rows(session, changes.row_updates)
    return changes


def write_rows(session: Session, updates: list[dict[str, object]]) -> None:
    """Row statuses in one executemany UPDATE (the objects already carry the new values)."""
    if updates:
        session.execute(update(PlanRow), updates)


def apply_agreements(
    session: Session,
    account: Account,
    payments: list[Payment],
    plans: list[Plan],
    open_promises: list[Promise],
    policy: Policy,
    today: date,
) -> Changes:
    """`sync_agreements` on what the caller loaded (end-of-day loads a chunk of accounts at once)."""
    changes = Changes()
    plan = governing_plan(plans, account.statements[-1])
    if plan is not None and plan.status == "active":
        _, state = position_for(account.statements[-1], payments, plan, policy, account, today)
        assert state is not None
        for row, rs in zip(plan.rows, state.rows, strict=True):
            if (row.status, row.paid) != (rs.status, rs.paid):
                # Set as already stored, so the flush does not write them one row at a time.
                set_committed_value(row, "status", rs.status)
                set_committed_value(row, "paid", rs.paid)
                changes.row_updates.append({"id": row.id, "status": rs.status, "paid": rs.paid})
                changes.rows += 1
        if state.status != "active":
            plan.status, plan.ended_on, plan.open_slot = state.status, state.ended_on, None
            if state.status == "broken":
                plan.notice = "pending"
                changes.broken.append(plan.plan_id)
            else:
                changes.completed.append(plan.plan_id)
            audit(session, "eod", f"plan.{state.status}", account.account_id, plan_id=plan.plan_id)
    for promise in open_promises:
        outcome = promise_outcome(promise.amount, promise.due_date, payments, promise.paid_before, today)
        if outcome != "open":
            promise.status = outcome
            (changes.kept if outcome == "kept" else changes.promises_broken).append(promise.promise_id)
            audit(session, "eod", f"promise.{outcome}", account.account_id, promise_id=promise.promise_id)
    return changes


def account_view(session: Session, account_id: str, policy: Policy, clock: Clock) -> AccountView:
    """Everything about an account as of today, for the API, the agent console and the bot."""
    account = get_account(session, account_id)
    today = clock.today()
    statement = account.statements[-1]
    payments = account_payments(session, account)
    plans = list(session.scalars(select(Plan).where(Plan.account_pk == account.id).order_by(Plan.id)))
    governing = governing_plan(plans, statement)
    pos, state = position_for(statement, payments, governing, policy, account, today)
    states: dict[str, PlanState] = {}
    for plan in plans:
        if plan is governing and state is not None:
            states[plan.plan_id] = state
        elif plan.status in GOVERNING and on_statement(plan, statement):
            _, earlier = position_for(statement, payments, plan, policy, account, today)
            if earlier is not None:
                states[plan.plan_id] = earlier
    promises = [
        (p, p.status if p.status != "open" else promise_outcome(p.amount, p.due_date, payments, p.paid_before, today))
        for p in session.scalars(select(Promise).where(Promise.account_pk == account.id).order_by(Promise.id))
    ]
    prefs = {
        c.channel: (c.value, c.changed_at, c.asked_by, c.rules)
        for c in session.scalars(
            select(ContactPreference).where(ContactPreference.cardholder_id == account.cardholder_id)
        )
    }
    holds = list(session.scalars(select(Hold).where(Hold.account_pk == account.id, Hold.active)))
    complaints = list(session.scalars(select(Complaint).where(Complaint.account_pk == account.id)))
    return AccountView(
        account,
        statement,
        pos,
        plans,
        promises,
        states,
        prefs,
        holds,
        complaints,
        flags=sorted({h.kind for h in holds}),
    )


def post_payment(
    session: Session, account_id: str, amount: int, paid_at: datetime, reference: str, policy: Policy, clock: Clock
) -> tuple[LedgerEntry, bool]:
    """Post a repayment once per reference; returns (entry, created). Promises and plans update."""
    if amount <= 0:
        raise ValidationFailed("the amount must be positive", field="amount")
    if paid_at.tzinfo is None:
        raise ValidationFailed("paid_at needs a time zone offset", field="paid_at")
    account = get_account(session, account_id)
    existing = session.scalar(
        select(LedgerEntry).where(
            LedgerEntry.account_pk == account.id, LedgerEntry.kind == "payment", LedgerEntry.reference == reference
        )
    )
    if existing is not None:
        return _same_payment(existing, amount, reference), False
    if paid_at > clock.now():
        raise ValidationFailed("paid_at is in the future: a payment is posted once it has been made", field="paid_at")
    paid_on = paid_at.astimezone(clock.tz).date()
    statement = account.statements[-1]
    if paid_on < statement.statement_date:
        raise ValidationFailed(
            "paid_at is before the current statement, which already counts what was paid before it "
            "(its paid_since_statement); post only payments made on or after the statement date",
            field="paid_at",
            statement_date=statement.statement_date.isoformat(),
        )
    entry = LedgerEntry(
        account_pk=account.id, kind="payment", amount=amount, effective_date=paid_on, reference=reference
    )
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:  # the same reference raced in from another request
        again = session.scalar(
            select(LedgerEntry).where(
                LedgerEntry.account_pk == account.id, LedgerEntry.kind == "payment", LedgerEntry.reference == reference
            )
        )
        assert again is not None
        return _same_payment(again, amount, reference), False
    session.flush()
    sync_agreements(session, account, policy, clock.today())
    audit(session, "api", "payment.post", account_id, amount=amount, reference=reference)
    session.flush()
    return entry, True


def _same_payment(existing: LedgerEntry, amount: int, reference: str) -> LedgerEntry:
    """A reference seen before: the same payment again (idempotent), or a conflict if the amount differs."""
    if existing.amount != amount:
        raise PaymentConflict(
            "this reference was already posted with another amount; nothing was changed",
            reference=reference,
            recorded_amount=fen_to_yuan(existing.amount),
            sent_amount=fen_to_yuan(amount),
        )
    return existing
