"""Health, KPIs, transcripts and the local providers' outboxes."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import MAX_MESSAGE_CHARS, PHONE_PATTERN, VISIBLE_TEXT_PATTERN, Money, Timestamp


class Checks(BaseModel):
    db: str = Field(description='"ok", or why not')
    rasa: str
    actions: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: Checks


ShareOrNone = float | None  # a fraction (0.1234), or null when nothing was counted


class ChannelKpis(BaseModel):
    conversations: int = Field(ge=0)
    handoff_rate: ShareOrNone
    containment: ShareOrNone


class GroupKpis(BaseModel):
    targeted: int = Field(ge=0)
    contact_rate: ShareOrNone
    rpc_rate: ShareOrNone
    ptp_rate: ShareOrNone


class CallKpis(BaseModel):
    """Calls begun in the period (ledger/calls.py): placed by a voice campaign, taken from holders, and
    their outcomes; `right_party_rate` is the verified holder reached, of the calls that ended."""

    placed: int = Field(ge=0)
    inbound: int = Field(ge=0)
    outcomes: dict[str, int]
    right_party_rate: ShareOrNone


class HandoffKpis(BaseModel):
    """Handoffs asked for in the period (the bot's own outages excluded); the rate per conversation
    is `handoff_rate` above."""

    requested: int = Field(ge=0)
    claimed: int = Field(ge=0)
    minutes_to_claim_median: float | None
    minutes_to_claim_max: float | None
    unstaffed: int = Field(ge=0, description="told when a person will reply: nobody on duty or the queue full")
    abandoned_waits: int = Field(ge=0, description="withdrawn, or the wait ran out with nobody taking it")
    withdrawn: int = Field(ge=0)
    timed_out: int = Field(ge=0)
    callbacks: int = Field(ge=0)
    callbacks_due: int = Field(ge=0)
    callbacks_kept: int = Field(ge=0)
    callback_kept_rate: ShareOrNone


class Kpis(BaseModel):
    """The collection KPIs (docs/operations.md) for [from, to)."""

    model_config = ConfigDict(populate_by_name=True)
    from_: date = Field(alias="from")
    to: date
    accounts_targeted: int = Field(ge=0)
    contact_rate: ShareOrNone
    rpc_rate: ShareOrNone
    ptp_rate: ShareOrNone
    promise_kept_rate: ShareOrNone
    plan_uptake: ShareOrNone
    recovery_rate: ShareOrNone
    amount_repaid: Money
    amount_overdue_at_start: Money
    roll_rate: dict[str, ShareOrNone]
    handoff_rate: ShareOrNone
    complaint_rate: ShareOrNone
    opt_out_rate: ShareOrNone
    containment: ShareOrNone
    cost_per_account: Money | None
    conversations: int = Field(ge=0)
    sms_sent: int = Field(ge=0)
    agent_minutes: int = Field(ge=0)
    by_channel: dict[str, ChannelKpis]
    by_bucket: dict[str, GroupKpis]
    by_campaign: dict[str, GroupKpis]
    handoffs: HandoffKpis
    calls: CallKpis


class TranscriptEntry(BaseModel):
    seq: int = Field(ge=1)
    at: Timestamp
    sender: Literal["user", "bot", "agent"]
    channel: str
    text: str = Field(description="card and ID numbers masked")
    intent: str | None
    confidence: float | None


class Transcript(BaseModel):
    conversation_id: str
    channel: Literal["web", "sms", "wechat", "voice"]
    mode: Literal["bot", "human"]
    verified: bool
    messages: list[TranscriptEntry]


class SmsInbound(BaseModel):
    """The provider's form fields the gateway reads (Twilio sends more; they count for the signature)."""

    model_config = ConfigDict(extra="allow")
    From: str = Field(pattern=PHONE_PATTERN, description="the sender, a mainland mobile")
    To: str | None = Field(default=None, max_length=64)
    Body: str = Field(
        min_length=1,
        max_length=MAX_MESSAGE_CHARS,
        pattern=VISIBLE_TEXT_PATTERN,
        description="at most MAX_MESSAGE_CHARS once control characters are dropped",
    )
    MessageSid: str = Field(min_length=1, max_length=64)


class SmsStatus(BaseModel):
    """The provider's delivery receipt (Twilio's status callback; it sends more fields, which count
    for the signature)."""

    model_config = ConfigDict(extra="allow")
    MessageSid: str = Field(min_length=1, max_length=64)
    MessageStatus: str = Field(
        min_length=1, max_length=32, description="queued, sent, delivered, undelivered, failed ..."
    )


class OutboxSms(BaseModel):
    to: str
    body: str
    provider: str
    status: Literal["sent", "failed", "delivered", "undelivered"]
    created_at: Timestamp


class OutboxMessage(BaseModel):
    openid: str
    kind: Literal["text", "template"]
    text: str
    status: Literal["sent", "failed"]
    sent_at: Timestamp


class Outbox(BaseModel):
    messages: list[OutboxMessage]
