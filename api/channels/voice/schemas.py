"""The voice webhooks' form fields (as Twilio sends them; the others still count for the signature)
and the outbox's rows."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import PHONE_PATTERN


class VoiceForm(BaseModel):
    model_config = ConfigDict(extra="allow")
    CallSid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    From: str | None = Field(default=None, max_length=64)
    To: str | None = Field(default=None, max_length=64)
    Direction: str | None = Field(default=None, max_length=32, description="inbound | outbound-api")
    CallStatus: str | None = Field(default=None, max_length=32)
    AnsweredBy: str | None = Field(default=None, max_length=32, description="human | machine_* | fax | unknown")
    SpeechResult: str | None = Field(default=None, max_length=1000)
    Confidence: float | None = Field(default=None, ge=0, le=1)
    Digits: str | None = Field(default=None, max_length=32, pattern=r"^[0-9*#]*$")


class OutboxCall(BaseModel):
    call_sid: str
    to: str = Field(pattern=PHONE_PATTERN)
    url: str = Field(description="what the provider requests when the call is answered")
    status: str
    created_at: str
