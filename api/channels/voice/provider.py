"""Placing calls: the `outbox` provider records them (GET /v1/voice/outbox), `twilio` uses Twilio's Calls API.

The account settings are the SMS ones (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER).
"""

from __future__ import annotations

import uuid
from typing import Protocol

import httpx

from api.channels.twilio import TwilioRest
from settings import Settings


class VoiceProvider(Protocol):
    name: str

    async def place(self, to: str, url: str, status_callback: str) -> str:
        """Start a call to `to`; the provider requests `url` when it is answered. Its CallSid."""
        ...


class OutboxVoice:
    """Local provider: places nothing; the call is recorded with the `url` the provider would request."""

    name = "outbox"

    async def place(self, to: str, url: str, status_callback: str) -> str:
        return f"CA{uuid.uuid4().hex}"


class TwilioVoice:
    """Twilio's Calls API: To/From/Url, progress to StatusCallback, answering-machine detection on."""

    name = "twilio"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.api = TwilioRest(settings, http)

    async def place(self, to: str, url: str, status_callback: str) -> str:
        return await self.api.create(
            "Calls",
            {
                "To": f"+86{to}",
                "From": self.api.sender,
                "Url": url,
                "Method": "POST",
                "StatusCallback": status_callback,
                "StatusCallbackMethod": "POST",
                "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
                "MachineDetection": "Enable",
            },
        )


def voice_provider_for(settings: Settings, http: httpx.AsyncClient) -> VoiceProvider:
    if settings.voice_provider == "twilio":
        return TwilioVoice(settings, http)
    return OutboxVoice()
