"""Tables. Money columns are integer fen (BigInteger); times are timezone-aware."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class AwareDateTime(TypeDecorator[datetime]):
    """Always aware on the way out: SQLite keeps no offset, so values are stored and read as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to an aware column")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: AwareDateTime}  # noqa: RUF012 - read by SQLAlchemy at class creation


def _now() -> Mapped[datetime]:
    return mapped_column(AwareDateTime, server_default=func.now())


class Cardholder(Base):
    __tablename__ = "cardholders"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str] = mapped_column(String(11), index=True)
    id_last4: Mapped[str] = mapped_column(String(4))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[datetime] = _now()


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64), unique=True)
    cardholder_id: Mapped[int] = mapped_column(ForeignKey("cardholders.id"))
    card_last4: Mapped[str] = mapped_column(String(4))
    credit_limit: Mapped[int] = mapped_column(BigInteger)
    daily_interest_rate: Mapped[Decimal | None] = mapped_column(Numeric(10, 6))
    late_fee_rate: Mapped[Decimal | None] = mapped_column(Numeric(6, 4))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime, server_default=func.now(), onupdate=func.now())

    cardholder: Mapped[Cardholder] = relationship(lazy="joined", innerjoin=True)
    statements: Mapped[list[Statement]] = relationship(
        order_by="Statement.statement_date", cascade="all, delete-orphan"
    )


class Statement(Base):
    __tablename__ = "statements"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    statement_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    statement_balance: Mapped[int] = mapped_column(BigInteger)
    minimum_payment: Mapped[int] = mapped_column(BigInteger)
    paid_since_statement: Mapped[int] = mapped_column(BigInteger, default=0)


class LedgerEntry(Base):
    """Charges, payments, interest and late fees as posted; payments are idempotent on reference."""

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("account_pk", "kind", "reference", name="uq_entry_reference"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # charge | payment | interest | late_fee
    amount: Mapped[int] = mapped_column(BigInteger)
    effective_date: Mapped[date] = mapped_column(Date)
    reference: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _now()


class Plan(Base):
    __tablename__ = "plans"
    # open_slot is 1 while a plan is pending or active, else NULL: one open plan per account,
    # enforced by the database even when two requests race.
    __table_args__ = (
        UniqueConstraint("account_pk", "open_slot", name="uq_plan_one_open"),
        UniqueConstraint("idempotency_key", name="uq_plan_idempotency"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(32), unique=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(20), index=True)
    open_slot: Mapped[int | None] = mapped_column(Integer)
    principal: Mapped[int] = mapped_column(BigInteger)
    periods: Mapped[int] = mapped_column(Integer)
    fee_rate_per_period: Mapped[Decimal] = mapped_column(Numeric(8, 6))
    total_fee: Mapped[int] = mapped_column(BigInteger)
    apr: Mapped[Decimal] = mapped_column(Numeric(8, 4))
    created_via: Mapped[str] = mapped_column(String(8))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    created_on: Mapped[date] = mapped_column(Date)  # in the app time zone; payments from this day count
    created_at: Mapped[datetime] = _now()
    # What the plan took in: principal part, and interest and 违约金 to date carried in (their sum is
    # `principal`); the fee was charged on `fee_base`. `paid_before`: fen paid on the account before it.
    fee_base: Mapped[int] = mapped_column(BigInteger, default=0)
    carried_interest: Mapped[int] = mapped_column(BigInteger, default=0)
    carried_fees: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_before: Mapped[int] = mapped_column(BigInteger, default=0)
    ended_on: Mapped[date | None] = mapped_column(Date)  # completed or broken on (end-of-day processing)
    notice: Mapped[str | None] = mapped_column(String(24))  # broken-plan SMS: sent | skipped:<reason> | pending
    rows: Mapped[list[PlanRow]] = relationship(order_by="PlanRow.seq", cascade="all, delete-orphan", lazy="selectin")


class PlanRow(Base):
    __tablename__ = "plan_rows"
    id: Mapped[int] = mapped_column(primary_key=True)
    plan_pk: Mapped[int] = mapped_column(ForeignKey("plans.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    due_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[int] = mapped_column(BigInteger)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(8), default="due")  # due | paid | missed
    paid: Mapped[int] = mapped_column(BigInteger, default=0)


class Promise(Base):
    __tablename__ = "promises"
    __table_args__ = (UniqueConstraint("idempotency_key", name="uq_promise_idempotency"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    promise_id: Mapped[str] = mapped_column(String(32), unique=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(8), default="open", index=True)
    created_via: Mapped[str] = mapped_column(String(8))
    idempotency_key: Mapped[str | None] = mapped_column(String(128))
    created_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = _now()
    paid_before: Mapped[int] = mapped_column(BigInteger, default=0)  # fen paid before the promise: not its


class EodRun(Base):
    """One end-of-day run per business day: when it finished and what it changed."""

    __tablename__ = "eod_runs"
    business_date: Mapped[date] = mapped_column(Date, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(AwareDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    accounts: Mapped[int] = mapped_column(Integer, default=0)
    changes: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class ContactPreference(Base):
    __tablename__ = "contact_preferences"
    __table_args__ = (UniqueConstraint("cardholder_id", "channel", name="uq_contact_channel"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    cardholder_id: Mapped[int] = mapped_column(ForeignKey("cardholders.id"))
    channel: Mapped[str] = mapped_column(String(16))  # sms | calls | third_party
    value: Mapped[str] = mapped_column(String(16))  # allowed | opted_out | forbidden
    changed_at: Mapped[datetime] = _now()


class Hold(Base):
    __tablename__ = "holds"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # dispute | deceased | legal_hold
    reason: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = _now()


class Complaint(Base):
    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    account_pk: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = _now()


class Conversation(Base):
    """A conversation on one channel; verification state lives here so every process sees it."""

    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(64), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(8), default="bot")  # bot | human
    account_pk: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    claimed_phone: Mapped[str | None] = mapped_column(String(11))
    verified_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    failed_verifications: Mapped[int] = mapped_column(Integer, default=0)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = mapped_column(AwareDateTime, server_default=func.now(), onupdate=func.now())


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_pk", "seq", name="uq_message_seq"),
        Index("ix_message_external", "channel", "external_id", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_pk: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(8))  # user | bot | agent
    channel: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)  # stored masked
    buttons: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)
    intent: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column()
    external_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _now()


class HandoffTicket(Base):
    __tablename__ = "handoff_tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_pk: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(Integer, default=2)
    summary: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="waiting")  # waiting | claimed | closed
    agent: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()


class AuditLog(Base):
    """Append-only record of every state change: who, what, when."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = _now()
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(128))
    detail: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class OutboundSms(Base):
    """Every SMS handed to a provider (the `outbox` provider only records it)."""

    __tablename__ = "outbound_sms"
    id: Mapped[int] = mapped_column(primary_key=True)
    to_phone: Mapped[str] = mapped_column(String(11), index=True)
    body: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="sent")  # sent | failed
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()


class Agent(Base):
    """A human agent. Passwords are stored as Argon2 hashes only."""

    __tablename__ = "agents"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(255))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(AwareDateTime)
    created_at: Mapped[datetime] = _now()


class AgentNote(Base):
    """An agent's internal note on a conversation; never shown to the holder."""

    __tablename__ = "agent_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_pk: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    agent: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    segment: Mapped[dict[str, object]] = mapped_column(JSON)
    template: Mapped[str] = mapped_column(String(64))
    send_at: Mapped[datetime] = mapped_column(AwareDateTime)
    selected: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = _now()


class ContactAttempt(Base):
    """One planned outbound contact and what became of it; every decision is kept with its reason."""

    __tablename__ = "contact_attempts"
    __table_args__ = (
        UniqueConstraint("campaign_pk", "account_pk", name="uq_attempt_once_per_campaign"),
        Index("ix_attempt_due", "status", "scheduled_at"),
        Index("ix_attempt_account_time", "account_pk", "scheduled_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_pk: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    channel: Mapped[str] = mapped_column(String(8), default="sms")
    status: Mapped[str] = mapped_column(String(12))  # queued | sending | sent | skipped | failed
    reason: Mapped[str] = mapped_column(String(24))  # ok | quiet_hours | opted_out | hold | ...
    scheduled_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    bucket: Mapped[str] = mapped_column(String(4))
