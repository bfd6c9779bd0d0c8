"""Accounts: import, the account view (position, plans, promises), payments."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ledger.clock import Clock
from ledger.errors import NotFound, ValidationFailed
from ledger.fees import AccountPosition, AccountTerms, Payment, position
from ledger.models import (
    Account,
    AuditLog,
    Cardholder,
    Complaint,
    ContactPreference,
    Hold,
    LedgerEntry,
    Plan,
    Promise,
    Statement,
)
from ledger.policy import FeePolicy, Policy

HOLD_FLAGS = ("deceased", "legal_hold", "dispute")
DEFAULT_PREFERENCES = {"sms": "allowed", "calls": "allowed", "third_party": "forbidden"}


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


@dataclass
class AccountView:
    account: Account
    statement: Statement
    position: AccountPosition
    plans: list[Plan]
    promises: list[tuple[Promise, str]]  # with the status as of today
    preferences: dict[str, tuple[str, datetime]]
    holds: list[Hold]
    complaints: list[Complaint]
    flags: list[str] = field(default_factory=list)


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
    bad = [f for f in rec.flags if f not in HOLD_FLAGS]
    if bad:
        raise ValidationFailed("unknown flags", field="flags", unknown=bad)


def upsert_account(session: Session, rec: AccountRecord, actor: str = "api") -> Account:
    """Create or replace an account from an import record (its statement replaced, history kept)."""
    validate_record(rec)
    account = session.scalar(select(Account).where(Account.account_id == rec.account_id).with_for_update(of=Account))
    if account is None:
        holder = Cardholder(name=rec.holder_name, phone=rec.phone, id_last4=rec.id_last4)
        session.add(holder)
        session.flush()
        account = Account(
            account_id=rec.account_id, cardholder_id=holder.id, card_last4=rec.card_last4, credit_limit=rec.credit_limit
        )
        session.add(account)
        session.flush()
        for channel, value in DEFAULT_PREFERENCES.items():
            session.add(ContactPreference(cardholder_id=holder.id, channel=channel, value=value))
    else:
        holder = account.cardholder
        holder.name, holder.phone, holder.id_last4 = rec.holder_name, rec.phone, rec.id_last4
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


def account_position(
    session: Session, account: Account, policy: Policy, today: date
) -> tuple[Statement, AccountPosition]:
    """The position of the account's current statement as of `today`."""
    statement = account.statements[-1]
    terms = AccountTerms(
        statement.statement_balance, statement.minimum_payment, statement.statement_date, statement.due_date
    )
    pays = [Payment(statement.statement_date, statement.paid_since_statement)] if statement.paid_since_statement else []
    entries = session.scalars(
        select(LedgerEntry).where(
            LedgerEntry.account_pk == account.id,
            LedgerEntry.kind == "payment",
            LedgerEntry.effective_date >= statement.statement_date,
        )
    )
    pays += [Payment(e.effective_date, e.amount) for e in entries]
    return statement, position(terms, pays, today, fee_policy_for(account, policy))


def promise_status(promise: Promise, paid_by_due: int, today: date) -> str:
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


def account_view(session: Session, account_id: str, policy: Policy, clock: Clock) -> AccountView:
    """Everything about an account as of today, for the API, the agent console and the bot."""
    account = get_account(session, account_id)
    today = clock.today()
    statement, pos = account_position(session, account, policy, today)
    plans = list(session.scalars(select(Plan).where(Plan.account_pk == account.id).order_by(Plan.id)))
    promises = [
        (p, promise_status(p, paid_between(session, account, p.created_on, p.due_date), today))
        for p in session.scalars(select(Promise).where(Promise.account_pk == account.id).order_by(Promise.id))
    ]
    prefs = {
        c.channel: (c.value, c.changed_at)
        for c in session.scalars(
            select(ContactPreference).where(ContactPreference.cardholder_id == account.cardholder_id)
        )
    }
    holds = list(session.scalars(select(Hold).where(Hold.account_pk == account.id, Hold.active)))
    complaints = list(session.scalars(select(Complaint).where(Complaint.account_pk == account.id)))
    return AccountView(
        account, statement, pos, plans, promises, prefs, holds, complaints, flags=sorted({h.kind for h in holds})
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
        return existing, False
    paid_on = paid_at.astimezone(clock.tz).date()
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
        return again, False
    today = clock.today()
    for promise in session.scalars(select(Promise).where(Promise.account_pk == account.id, Promise.status == "open")):
        status = promise_status(promise, paid_between(session, account, promise.created_on, promise.due_date), today)
        if status != "open":
            promise.status = status
    for plan in session.scalars(select(Plan).where(Plan.account_pk == account.id, Plan.status == "active")):
        paid = paid_between(session, account, plan.created_on, date.max)
        if paid >= plan.principal + plan.total_fee:
            plan.status, plan.open_slot = "completed", None
    audit(session, "api", "payment.post", account_id, amount=amount, reference=reference)
    session.flush()
    return entry, True
