"""Tables. Money columns are integer fen (BigInteger); times are timezone-aware."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    true,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from ledger.clock import process_clock
from ledger.kinds import (
    AgentRole,
    AttemptChannel,
    AttemptStatus,
    Channel,
    ContactChannel,
    ContactPurpose,
    CreatedVia,
    EntryKind,
    HandoffStatus,
    HardshipKind,
    HoldKind,
    InstalmentStatus,
    Mode,
    PlanStatus,
    PlanType,
    PreferenceSource,
    PreferenceValue,
    Presence,
    PromiseStatus,
    RequestKind,
    RequestStatus,
    Sender,
    SuppressedChannel,
    SuppressionReason,
)


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


def stamp() -> datetime:
    """When a row is written, by the process's clock (so a test stack's rows agree with its "now")."""
    return process_clock().now()


def _now() -> Mapped[datetime]:
    return mapped_column(AwareDateTime, default=stamp, server_default=func.now())


def _updated() -> Mapped[datetime]:
    return mapped_column(AwareDateTime, default=stamp, server_default=func.now(), onupdate=stamp)


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
    updated_at: Mapped[datetime] = _updated()

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
    # The first posting date of the statement's charges: interest runs from it once the interest-free
    # period is lost (NULL: from the statement date).
    interest_start: Mapped[date | None] = mapped_column(Date)


class LedgerEntry(Base):
    """Charges, payments, interest and late fees as posted; payments are idempotent on reference."""

    __tablename__ = "ledger_entries"
    __table_args__ = (UniqueConstraint("account_pk", "kind", "reference", name="uq_entry_reference"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[EntryKind] = mapped_column(String(16))
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
    type: Mapped[PlanType] = mapped_column(String(16))
    status: Mapped[PlanStatus] = mapped_column(String(20), index=True)
    open_slot: Mapped[int | None] = mapped_column(Integer)
    principal: Mapped[int] = mapped_column(BigInteger)
    periods: Mapped[int] = mapped_column(Integer)
    fee_rate_per_period: Mapped[Decimal] = mapped_column(Numeric(8, 6))
    total_fee: Mapped[int] = mapped_column(BigInteger)
    apr: Mapped[Decimal] = mapped_column(Numeric(8, 4))
    created_via: Mapped[CreatedVia] = mapped_column(String(8))
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
    status: Mapped[InstalmentStatus] = mapped_column(String(8), default="due")
    paid: Mapped[int] = mapped_column(BigInteger, default=0)


class Promise(Base):
    __tablename__ = "promises"
    __table_args__ = (UniqueConstraint("idempotency_key", name="uq_promise_idempotency"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    promise_id: Mapped[str] = mapped_column(String(32), unique=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[PromiseStatus] = mapped_column(String(8), default="open", index=True)
    created_via: Mapped[CreatedVia] = mapped_column(String(8))
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
    channel: Mapped[ContactChannel] = mapped_column(String(16))
    value: Mapped[PreferenceValue] = mapped_column(String(16))
    # What a "restricted" channel still allows (ledger/contact_preferences.py): {"windows": [{"days":
    # "weekdays"|"weekends"|"all", "from": "18:00", "to": "21:00"}], "places": {"workplace": "forbidden"}}
    rules: Mapped[dict[str, object] | None] = mapped_column(JSON)
    changed_at: Mapped[datetime] = _now()
    asked_by: Mapped[str | None] = mapped_column(String(64))  # who asked: a conversation id, an agent, "import"
    source: Mapped[PreferenceSource | None] = mapped_column(String(16))


class NumberSuppression(Base):
    """A phone number we must not write to: its owner said 退订 (the whole number), or said it is not
    the holder's number any more (that account only, until an agent reviews it)."""

    __tablename__ = "number_suppressions"
    id: Mapped[int] = mapped_column(primary_key=True)
    phone: Mapped[str] = mapped_column(String(11), index=True)
    channel: Mapped[SuppressedChannel] = mapped_column(String(16))
    account_pk: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))  # None: every account
    reason: Mapped[SuppressionReason] = mapped_column(String(16))
    asked_by: Mapped[str] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(AwareDateTime)
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_at: Mapped[datetime | None] = mapped_column(AwareDateTime)


class ContactRequest(Base):
    """A request from someone not verified (stop contact, death, dispute, identity theft, wrong number):
    nothing on the account changes; a person checks it and acts."""

    __tablename__ = "contact_requests"
    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[RequestKind] = mapped_column(String(16))
    conversation_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[Channel] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(11))  # the number given or proven, registered or not
    text: Mapped[str] = mapped_column(Text)  # what they said, masked
    status: Mapped[RequestStatus] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(AwareDateTime)


class Hardship(Base):
    """A verified holder's hardship (illness, job loss, ...): reminders pause for the policy's days."""

    __tablename__ = "hardships"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    phone: Mapped[str] = mapped_column(String(11), index=True)
    kind: Mapped[HardshipKind] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(AwareDateTime)
    pause_until: Mapped[date] = mapped_column(Date)  # reminders resume the day after


class Hold(Base):
    __tablename__ = "holds"
    id: Mapped[int] = mapped_column(primary_key=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    kind: Mapped[HoldKind] = mapped_column(String(16))
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
    channel: Mapped[Channel] = mapped_column(String(16))
    mode: Mapped[Mode] = mapped_column(String(8), default="bot")
    account_pk: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    claimed_phone: Mapped[str | None] = mapped_column(String(11))
    # The phone is the channel's own, not typed: the SMS sender's, the number our link went to, a
    # WeChat follower's bound phone. A typed number never replaces it.
    phone_proven: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Who said they are speaking: None (not said), "third_party" (family, a friend, a colleague...):
    # such a conversation never verifies as the holder.
    speaker: Mapped[str | None] = mapped_column(String(16))
    verified_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    failed_verifications: Mapped[int] = mapped_column(Integer, default=0)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_holder_at: Mapped[datetime | None] = mapped_column(AwareDateTime)  # verification lapses after silence
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _updated()


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_pk", "seq", name="uq_message_seq"),
        Index("ix_message_external", "channel", "external_id", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_pk: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    sender: Mapped[Sender] = mapped_column(String(8))
    channel: Mapped[Channel] = mapped_column(String(16))
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
    # waiting | claimed | closed | released | recovered | withdrawn (the holder no longer wanted a person)
    status: Mapped[HandoffStatus] = mapped_column(String(16), default="waiting")
    agent: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()
    # Whether the holder was parked for a person (the bot quiet); False: nobody was on duty or the
    # queue was full, or the wait ran out, and the bot keeps serving while the ticket waits.
    parked: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    claimed_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(AwareDateTime)  # withdrawn, released or closed
    timed_out_at: Mapped[datetime | None] = mapped_column(AwareDateTime)  # unclaimed past max_wait_minutes
    callback_at: Mapped[datetime | None] = mapped_column(AwareDateTime)  # when the holder asked to be called


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
    provider_id: Mapped[str | None] = mapped_column(String(64), index=True)  # receipts name it (ledger/receipts.py)
    # sent | failed (the hand-over), then from the provider's receipts: delivered | undelivered | failed
    status: Mapped[str] = mapped_column(String(16), default="sent")
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
    role: Mapped[AgentRole] = mapped_column(String(16), default="agent", server_default="agent")
    disabled_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    created_at: Mapped[datetime] = _now()
    team: Mapped[str] = mapped_column(String(32), default="collections", server_default="collections")
    presence: Mapped[Presence] = mapped_column(String(16), default="away", server_default="away")
    presence_at: Mapped[datetime | None] = mapped_column(AwareDateTime)


class AgentToken(Base):
    """One issued agent token (by its JWT id): logging out or disabling the agent revokes it."""

    __tablename__ = "agent_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(AwareDateTime)


class ChatSession(Base):
    """A web chat session: the holder's browser tab proves itself with the token (only its hash is kept)."""

    __tablename__ = "chat_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_pk: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    link_attempt_pk: Mapped[int | None] = mapped_column(Integer)
    expires_at: Mapped[datetime] = mapped_column(AwareDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(AwareDateTime)  # the holder ended it (结束对话)
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
        Index("ix_attempt_phone_time", "to_phone", "scheduled_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_pk: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    account_pk: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))  # None: an unregistered number
    channel: Mapped[AttemptChannel] = mapped_column(String(8), default="sms")
    purpose: Mapped[ContactPurpose] = mapped_column(String(12), default="campaign")
    to_phone: Mapped[str | None] = mapped_column(String(11))  # the person: caps are counted per number
    status: Mapped[AttemptStatus] = mapped_column(String(12))
    reason: Mapped[str] = mapped_column(String(24))  # ok | quiet_hours | opted_out | hold | ...
    selected_at: Mapped[datetime | None] = mapped_column(AwareDateTime)  # payments after this cancel the send
    scheduled_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    bucket: Mapped[str] = mapped_column(String(4))
    # A call's result (ledger/voice.py call_outcome): no_answer | machine | promise | refusal | right_party | unverified
    outcome: Mapped[str | None] = mapped_column(String(16))


class VoiceCall(Base):
    """One telephone call, either way (ledger/calls.py): its state between webhook turns and its outcome.
    An outbound call placed by the `outbox` provider is only recorded here (GET /v1/voice/outbox)."""

    __tablename__ = "voice_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64), unique=True)
    direction: Mapped[str] = mapped_column(String(16))  # inbound | outbound-api
    phone: Mapped[str | None] = mapped_column(String(11), index=True)  # the holder's side of the line
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    attempt_pk: Mapped[int | None] = mapped_column(ForeignKey("contact_attempts.id"))
    account_pk: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    provider: Mapped[str] = mapped_column(String(16))
    url: Mapped[str | None] = mapped_column(Text)  # what the provider requests when the call is answered
    status: Mapped[str] = mapped_column(String(16))  # Twilio's CallStatus: queued | ringing | in-progress | ...
    answered_by: Mapped[str | None] = mapped_column(String(24))
    outcome: Mapped[str | None] = mapped_column(String(16))
    turn: Mapped[int] = mapped_column(Integer, default=0)  # the gather the caller is answering
    silences: Mapped[int] = mapped_column(Integer, default=0)
    expecting: Mapped[str | None] = mapped_column(String(16))  # identity | id_last4 | card_last4
    menu: Mapped[dict[str, str] | None] = mapped_column(JSON)  # keypad digit -> what the bot reads
    last_twiml: Mapped[str | None] = mapped_column(Text)  # answered again to a replayed request
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _updated()


class WeChatUser(Base):
    """A WeChat follower (openid) of the bank's Official Account and its current conversation."""

    __tablename__ = "wechat_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), unique=True)
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    subscribed: Mapped[bool] = mapped_column(default=True)
    # The holder's last message or click: starts WeChat's 48-hour customer-service window and
    # measures VERIFY_IDLE_MINUTES.
    last_interaction_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    # 退订 from this follower: no more reminders here (the follower decides what it receives).
    reminders_opted_out_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    created_at: Mapped[datetime] = _now()


class WeChatBinding(Base):
    """An openid proved to be a holder's (verified in a conversation); ended by 解绑 or unsubscribing."""

    __tablename__ = "wechat_bindings"
    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    cardholder_id: Mapped[int] = mapped_column(ForeignKey("cardholders.id"), index=True)
    account_pk: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    conversation_id: Mapped[str] = mapped_column(String(64))
    bound_at: Mapped[datetime] = mapped_column(AwareDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(16))  # unbind | unsubscribe | rebound


class WeChatPush(Base):
    """Every push WeChat delivered, once: the key is MsgId, or FromUserName+CreateTime for events."""

    __tablename__ = "wechat_pushes"
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(128), unique=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # text | voice | image | ... | event:subscribe ...
    # The push itself, until it is processed: a gateway that dies after answering WeChat picks it up again.
    payload: Mapped[dict[str, object] | None] = mapped_column(JSON)
    done_at: Mapped[datetime | None] = mapped_column(AwareDateTime)
    received_at: Mapped[datetime] = _now()


class WeChatNonce(Base):
    """A push's signed (timestamp, nonce, signature), kept for the freshness window: seen again with
    another push inside it, it is a replay (ledger/wechat.py)."""

    __tablename__ = "wechat_nonces"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of timestamp, nonce, signature
    dedupe_key: Mapped[str] = mapped_column(String(128))  # the push it carried (MsgId, or openid+time)
    seen_at: Mapped[datetime] = mapped_column(AwareDateTime, index=True)


class WeChatOutbound(Base):
    """Every message handed to WeChat (the `outbox` provider only records it)."""

    __tablename__ = "wechat_outbound"
    id: Mapped[int] = mapped_column(primary_key=True)
    openid: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # text | template
    text: Mapped[str] = mapped_column(Text)
    provider: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))  # sent | failed
    error: Mapped[str | None] = mapped_column(String(128))
    conversation_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = _now()
