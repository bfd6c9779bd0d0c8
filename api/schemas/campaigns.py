"""Outbound campaigns: what to send to whom, and how far it has gone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from api.schemas.common import JSON_NUMBER, AwareDatetimeIn, Id, Timestamp
from ledger.policy import Bucket

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# The message templates there are; a template must also pass the channel's rules (institution named,
# an opt-out, no debt detail) or the campaign is refused (422 template_not_allowed).
SMS_TEMPLATES = sorted(p.stem for p in (TEMPLATES / "sms").glob("*.j2"))
WECHAT_TEMPLATES = sorted(p.stem for p in (TEMPLATES / "wechat").glob("*.j2"))


OverdueDays = Annotated[int, Field(ge=1, le=100_000), JSON_NUMBER]


class SegmentIn(BaseModel):
    """Also: min_overdue_days is not above max_overdue_days (422 validation_failed)."""

    model_config = ConfigDict(extra="forbid")
    buckets: list[Bucket] = Field(default=[], description="none: every bucket")
    min_overdue_days: OverdueDays | None = None
    max_overdue_days: OverdueDays | None = None


class CampaignCreate(BaseModel):
    """`template` names a file of templates/<channel>/; `send_at`, when given, is not in the past."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    segment: SegmentIn
    template: str = Field(
        pattern=r"^[a-z0-9_]{1,64}$",
        json_schema_extra={"enum": list[JsonValue](sorted(set(SMS_TEMPLATES) | set(WECHAT_TEMPLATES)))},
        description=f"sms: one of {SMS_TEMPLATES}; wechat: one of {WECHAT_TEMPLATES}",
    )
    send_at: AwareDatetimeIn | None = Field(default=None, description="with its UTC offset; none: now")
    channel: Literal["sms", "wechat", "voice"] = Field(
        default="sms",
        description="wechat: template messages to holders with a bound openid; voice: calls, decided at call time",
    )


class Skipped(BaseModel):
    opted_out: int = Field(ge=0)
    quiet_hours: int = Field(ge=0)
    frequency_cap: int = Field(ge=0)
    hold: int = Field(ge=0)
    arrangement: int = Field(ge=0)
    number_suppressed: int = Field(ge=0)
    hardship: int = Field(ge=0)


class CampaignCreated(BaseModel):
    campaign_id: Id
    selected: int = Field(ge=0)
    queued: int = Field(ge=0)
    skipped: Skipped


class Progress(BaseModel):
    to_send: int = Field(ge=0)
    sent: int = Field(ge=0)
    failed: int = Field(ge=0)
    waiting: int = Field(ge=0)
    done: float = Field(ge=0, le=1, description="the share of messages sent or failed")


class CampaignProgress(BaseModel):
    campaign_id: Id
    name: str
    template: str
    send_at: Timestamp
    selected: int = Field(ge=0)
    progress: Progress
    by_status: dict[str, int]
    by_reason: dict[str, int]
