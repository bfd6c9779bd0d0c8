"""Request and response models. Money crosses the API as a yuan string with two places."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ledger.money import fen_to_yuan, yuan_to_fen

MoneyIn = Annotated[str, Field(pattern=r"^\d{1,12}(\.\d{1,2})?$", examples=["1234.50"])]
Money = Annotated[str, Field(examples=["1234.50"])]
PHONE_PREFIXES = ("+86", "0086", "86")


def normalise_phone(raw: str) -> str:
    digits = "".join(ch for ch in raw if ch.isdigit() or ch == "+")
    for prefix in PHONE_PREFIXES:
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            digits = digits[len(prefix) :]
            break
    if len(digits) != 11 or not digits.startswith("1") or not digits.isdigit():
        raise ValueError("phone must be an 11-digit mainland mobile number")
    return digits


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    holder_name: str = Field(min_length=1, max_length=64)
    phone: str
    id_last4: str = Field(pattern=r"^\d{3}[\dXx]$")
    card_last4: str = Field(pattern=r"^\d{4}$")
    credit_limit: MoneyIn
    statement_balance: MoneyIn
    minimum_payment: MoneyIn
    statement_date: date
    due_date: date
    paid_since_statement: MoneyIn = "0.00"
    daily_interest_rate: Decimal | None = Field(default=None, ge=0, le=Decimal("0.001"))
    late_fee_rate: Decimal | None = Field(default=None, ge=0, le=Decimal("0.2"))
    flags: list[Literal["deceased", "legal_hold", "dispute"]] = []
    timezone: str = Field(default="Asia/Shanghai", max_length=64, examples=["Asia/Shanghai", "Asia/Urumqi"])

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str) -> str:
        return normalise_phone(v)

    @field_validator("id_last4")
    @classmethod
    def _upper(cls, v: str) -> str:
        return v.upper()


class BreakdownPublic(BaseModel):
    principal: Money
    interest: Money
    late_fee: Money
    plan_fee: Money = Field(default="0.00", description="instalment fees inside an agreed plan")
    total: Money


class ScheduleRowPublic(BaseModel):
    due_date: date
    amount: Money
    status: Literal["due", "paid", "missed"] = Field(
        description="paid in full; missed: unpaid past the policy's grace days; else due"
    )
    paid: Money


class PlanPublic(BaseModel):
    plan_id: str
    type: Literal["installment", "deferment", "personalized"]
    status: Literal["proposed", "pending_approval", "active", "completed", "broken", "cancelled"]
    principal: Money
    periods: int
    fee_rate_per_period: str
    total_fee: Money
    apr: str
    schedule: list[ScheduleRowPublic]
    next_due_date: date | None = Field(description="the next instalment not yet due; null when none")
    next_due_amount: Money
    paid_periods: int
    missed_periods: int
    remaining: Money = Field(description="still unpaid on the schedule")
    created_via: Literal["chat", "agent", "api"]


class PromisePublic(BaseModel):
    promise_id: str
    amount: Money
    due_date: date
    status: Literal["open", "kept", "broken"]


class AccountPublic(BaseModel):
    account_id: str
    holder_name: str
    phone: str
    id_last4: str
    card_last4: str
    credit_limit: Money
    statement_balance: Money
    minimum_payment: Money
    statement_date: date
    due_date: date
    paid_since_statement: Money
    daily_interest_rate: str
    late_fee_rate: str
    flags: list[str]
    timezone: str
    overdue_days: int
    bucket: str
    amount_due: Money
    breakdown: BreakdownPublic
    outstanding: Money
    credit: Money = Field(description="overpayment kept on the account; 0.00 when none")
    plans: list[PlanPublic]
    promises: list[PromisePublic]
    contact_preferences: dict[str, str | None]
    disputes: list[dict[str, str]]
    complaints: list[dict[str, str]]


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: MoneyIn
    paid_at: datetime
    reference: str = Field(min_length=1, max_length=128)


class PaymentPublic(BaseModel):
    reference: str
    amount: Money
    paid_on: date
    created: bool
    account: AccountPublic


class ChatIn(BaseModel):
    text: str = Field(min_length=1)


class Button(BaseModel):
    title: str
    payload: str


class ChatMessage(BaseModel):
    seq: int
    text: str
    sender: Literal["bot", "agent"] = "bot"
    buttons: list[Button] | None = None


class ChatOut(BaseModel):
    conversation_id: str
    mode: Literal["bot", "human"]
    messages: list[ChatMessage]


def money(fen: int) -> str:
    return fen_to_yuan(fen)


def to_fen(text: str) -> int:
    return yuan_to_fen(text)
