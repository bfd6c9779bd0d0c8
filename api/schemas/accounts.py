"""Accounts: the import record, the account view, payments."""

from __future__ import annotations

import zoneinfo
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from api.schemas.common import (
    AwareDatetimeIn,
    DailyRateIn,
    DateIn,
    Id,
    LateFeeRateIn,
    Money,
    MoneyIn,
    PhoneIn,
    PositiveMoneyIn,
    Rate,
)
from ledger.policy import Bucket

# The IANA zones this Python knows; the ledger refuses any other (422, details.field "timezone").
TIME_ZONES = list[JsonValue](sorted(zoneinfo.available_timezones()))
Flag = Literal["deceased", "legal_hold", "dispute"]


class AccountCreate(BaseModel):
    """An import record. Also: minimum_payment and paid_since_statement are at most
    statement_balance, due_date is not before statement_date and interest_start not after it
    (422 validation_failed). Re-importing an account with a different statement while a plan is
    pending or active, or a promise is open, is refused (409 conflict, details plan_id or
    promise_id); the same statement with new holder details is accepted."""

    model_config = ConfigDict(extra="forbid")
    account_id: Id
    holder_name: str = Field(min_length=1, max_length=64)
    phone: PhoneIn
    id_last4: str = Field(pattern=r"^[0-9]{3}[0-9Xx]$")
    card_last4: str = Field(pattern=r"^[0-9]{4}$")
    credit_limit: MoneyIn
    statement_balance: MoneyIn
    minimum_payment: MoneyIn
    statement_date: DateIn
    due_date: DateIn
    paid_since_statement: MoneyIn = "0.00"
    daily_interest_rate: DailyRateIn | None = None
    late_fee_rate: LateFeeRateIn | None = None
    flags: list[Flag] = Field(default=[], max_length=3)
    timezone: str = Field(
        default="Asia/Shanghai", examples=["Asia/Shanghai", "Asia/Urumqi"], json_schema_extra={"enum": TIME_ZONES}
    )
    interest_start: DateIn | None = Field(
        default=None,
        description="the first posting date of the statement's charges, not after statement_date: interest "
        "runs from it once the interest-free period is lost (default: the statement date)",
    )

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
    grace_applied: bool = Field(
        default=False,
        description="容时: a payment within policy fees.grace_days after the due date counted as on time, "
        "or today is inside those days (not overdue yet)",
    )
    tolerance_applied: bool = Field(
        default=False,
        description="容差: a shortfall of at most policy fees.tolerance counted as paid (not overdue, no 违约金, "
        "the interest-free period kept when it is the statement's)",
    )


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
    fee_rate_per_period: Rate
    total_fee: Money
    apr: Rate
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


class Dispute(BaseModel):
    kind: Literal["dispute"]
    reason: str


class ComplaintRef(BaseModel):
    reference: str
    status: str


# A contact preference's entry: a value ("allowed"), when/by whom, its windows, its places.
PreferenceValue = str | list[dict[str, str]] | dict[str, str] | None


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
    interest_start: date | None = Field(default=None, description="as imported; null: the statement date")
    daily_interest_rate: Rate
    late_fee_rate: Rate
    flags: list[Flag]
    timezone: str
    overdue_days: int = Field(ge=0)
    bucket: Bucket
    amount_due: Money
    breakdown: BreakdownPublic
    outstanding: Money
    credit: Money = Field(description="overpayment kept on the account; 0.00 when none")
    plans: list[PlanPublic]
    promises: list[PromisePublic]
    contact_preferences: dict[str, PreferenceValue] = Field(
        description='"sms", "calls", "wechat": allowed|opted_out|restricted, with "<channel>_windows" '
        '([{"days": "weekdays"|"weekends"|"all", "from": "18:00", "to": "21:00"}]: only then) and '
        '"<channel>_places" ({"workplace": "forbidden"}); "places": where calls may not reach them; '
        '"third_party": forbidden; and when and by whom each changed'
    )
    disputes: list[Dispute]
    complaints: list[ComplaintRef]


class PaymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: PositiveMoneyIn
    paid_at: AwareDatetimeIn = Field(description="with its UTC offset")
    reference: str = Field(min_length=1, max_length=128)


class PaymentPublic(BaseModel):
    reference: str
    amount: Money
    paid_on: date
    created: bool
    account: AccountPublic


class AccountBatchPublic(BaseModel):
    """What `POST /v1/accounts:batch` imported: every row, in one transaction."""

    rows: int = Field(ge=0, description="rows in the batch")
    created: int = Field(ge=0, description="accounts new to the book")
    updated: int = Field(ge=0, description="accounts re-imported (as POST /v1/accounts re-imports one)")


class RejectedRow(BaseModel):
    line: int = Field(ge=0, description="JSON lines: the line number; a JSON array: the position from 1")
    reason: str
    field: str | None = None
