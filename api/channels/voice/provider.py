"""Placing calls: the `outbox` provider records them (GET /v1/voice/outbox), `twilio` uses Twilio's Calls API.

The account settings are the SMS ones (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM_NUMBER).
"""

from __future__ import annotations

import uuid
from typing import Protocol

import httpx

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
        self.sid = settings.twilio_account_sid
        self.token = settings.twilio_auth_token.get_secret_value()
        self.sender = settings.twilio_from_number
        self.base = settings.twilio_api_base.rstrip("/")
        self.http = http

    async def place(self, to: str, url: str, status_callback: str) -> str:
        resp = await self.http.post(
            f"{self.base}/2010-04-01/Accounts/{self.sid}/Calls.json",
            data={
                "To": f"+86{to}",
                "From": self.sender,
                "Url": url,
                "Method": "POST",
                "StatusCallback": status_callback,
                "StatusCallbackMethod": "POST",
                "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
                "MachineDetection": "Enable",
            },
            auth=(self.sid, self.token),
            timeout=10,
        )
        resp.raise_for_status()
        return str(resp.json()["sid"])


def voice_provider_for(settings: Settings, http: httpx.AsyncClient) -> VoiceProvider:
    if settings.voice_provider == "twilio":
        return TwilioVoice(settings, http)
    return OutboxVoice()
