"""Agents and supervisors: accounts, login, the queue, a conversation, what they may do with it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, StrictBool

from api.schemas.accounts import AccountPublic
from api.schemas.common import MAX_MESSAGE_CHARS, ConversationIdStr, Id, Money, Rate, Timestamp
from api.schemas.ops import Transcript
from ledger.policy import Bucket

USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"
Role = Literal["agent", "supervisor"]


class AgentCreate(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN)
    password: str = Field(min_length=10, max_length=256)
    display_name: str = Field(min_length=1, max_length=64)
    role: Role = "agent"


class LoginForm(BaseModel):
    """The OAuth2 password flow's form (`grant_type` may be left out)."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    grant_type: str | None = Field(default=None, pattern=r"^password$")


class AgentPublic(BaseModel):
    username: str = Field(pattern=USERNAME_PATTERN)
    display_name: str
    role: Role = "agent"


class Token(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"


class TextIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)


class AccountSummary(BaseModel):
    account_id: Id
    bucket: Bucket
    overdue_days: int = Field(ge=0)
    amount_due: Money
    outstanding: Money
    flags: list[str]


class LastMessage(BaseModel):
    sender: Literal["user", "bot", "agent"]
    text: str


class QueueItem(BaseModel):
    conversation_id: ConversationIdStr
    channel: Literal["web", "sms", "wechat", "voice"]
    reason: str
    priority: int
    summary: str
    status: Literal["waiting", "claimed"]
    agent: str | None
    waiting_seconds: int
    created_at: Timestamp
    account: AccountSummary | None
    last_messages: list[LastMessage]
    holder_waiting: bool = Field(
        default=True, description="the holder waits for a person (false: the bot serves them meanwhile)"
    )
    callback_at: Timestamp | None = Field(default=None, description="when the holder asked to be called back")


class Offer(BaseModel):
    periods: int = Field(ge=1)
    per_period: Money
    total_fee: Money
    apr: Rate


class NoteOut(BaseModel):
    agent: str
    text: str
    at: Timestamp


class ConversationDetail(BaseModel):
    """Card, ID and phone numbers in `account` are masked."""

    transcript: Transcript
    account: AccountPublic | None
    offers: list[Offer]
    notes: list[NoteOut]


class ClaimSummaryOut(BaseModel):
    """What the holder asked, what was offered or agreed and what they refused, and their own words
    about their situation (masked): read before the first reply, so nothing is asked twice."""

    asked: list[str]
    offered: list[str]
    refused: list[str]
    situation: list[str]
    callback_at: Timestamp | None


class Claimed(BaseModel):
    conversation_id: ConversationIdStr
    status: Literal["claimed"]
    agent: str
    account: AccountSummary | None = Field(default=None, description="only when the holder verified")
    summary: ClaimSummaryOut | None = None


class PresenceIn(BaseModel):
    status: Literal["available", "away"]


class PresenceOut(BaseModel):
    username: str
    status: Literal["available", "away"]
    team: str
    on_duty: bool = Field(description="the agent's team is within its working hours now")


class AgentMessage(BaseModel):
    seq: int = Field(ge=1)
    text: str
    sender: Literal["agent"] = "agent"


class NoteAdded(BaseModel):
    agent: str
    text: str


class PlanApproval(BaseModel):
    """Why the plan is approved, in the approver's words: kept in the audit log with who approved."""

    reason: str = Field(min_length=2, max_length=500)


class PlanApproved(BaseModel):
    plan_id: Id
    status: Literal["active"]
    approved_by: str
    basis: Literal["supervisor", "agent_within_limit"] = Field(
        description="a supervisor's approval, or the agent holding the conversation within policy.yml approval:"
    )
    reason: str


class Released(BaseModel):
    conversation_id: ConversationIdStr
    mode: Literal["bot"]
    bot_resumed: bool = Field(description="Rasa took the conversation back (false: it will at the next message)")


class ContactRequestOut(BaseModel):
    reference: str
    kind: str
    conversation_id: str | None
    channel: str | None
    phone: str | None = Field(description="masked")
    text: str
    created_at: Timestamp


class RequestClosed(BaseModel):
    reference: str
    status: Literal["done"]


class SuppressionOut(BaseModel):
    id: int = Field(ge=1)
    phone: str = Field(description="masked")
    channel: str
    reason: str
    account_id: str | None
    asked_by: str = Field(description="masked")
    created_at: Timestamp


class Review(BaseModel):
    keep: StrictBool = Field(description="true: the number is not the holder's; false: lift it, contact may resume")


class Reviewed(BaseModel):
    id: int = Field(ge=1)
    active: bool
    reviewed_by: str
