"""SMS: Twilio's webhook protocol in; a provider interface out (outbox for local use, Twilio's REST API).

A Chinese provider implements `SmsProvider.send` and, for inbound, its own signature check.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Protocol

import httpx
from sqlalchemy.orm import Session

from api.channels.twilio import TwilioRest
from ledger import compliance
from ledger.clock import Clock
from ledger.db import Database
from ledger.models import OutboundSms
from ledger.policy import Policy
from settings import Settings

log = logging.getLogger("api.sms")

SEGMENT_CHARS = 70  # one UCS-2 SMS segment: what a Chinese message fits in
_BREAKS = re.compile(r"(?<=[。！？；!?;])")


def split_sms(text: str, limit: int = SEGMENT_CHARS) -> list[str]:
    """Split at sentence ends so each part fits one segment; a sentence longer than that is cut."""
    parts: list[str] = []
    current = ""
    for sentence in (s for s in _BREAKS.split(text) if s):
        while len(sentence) > limit:
            if current:
                parts.append(current)
                current = ""
            parts.append(sentence[:limit])
            sentence = sentence[limit:]
        if len(current) + len(sentence) > limit:
            parts.append(current)
            current = sentence
        else:
            current += sentence
    if current:
        parts.append(current)
    return parts


def as_sms(text: str, buttons: list[dict[str, str]] | None) -> str:
    """Quick replies become a hint the holder can type back."""
    if not buttons:
        return text
    return f"{text}（可回复：{'、'.join(b['title'] for b in buttons)}）"


class SmsProvider(Protocol):
    name: str

    async def send(self, to: str, body: str) -> str:
        """Hand one message to the provider; return its message id."""
        ...


class OutboxProvider:
    """Local provider: sends nothing, keeps what would have been sent (GET /v1/sms/outbox)."""

    name = "outbox"

    async def send(self, to: str, body: str) -> str:
        return "outbox"


class TwilioProvider:
    """Twilio's Messages API: POST form To/From/Body with HTTP basic auth (account SID, auth token)."""

    name = "twilio"

    def __init__(self, settings: Settings, http: httpx.AsyncClient) -> None:
        self.api = TwilioRest(settings, http)
        # Where Twilio reports what became of each message (api/channels/sms/routes.py, ledger/receipts.py).
        self.status_callback = f"{settings.public_base_url.rstrip('/')}/v1/sms/status"

    async def send(self, to: str, body: str) -> str:
        data = {"To": f"+86{to}", "From": self.api.sender, "Body": body, "StatusCallback": self.status_callback}
        return await self.api.create("Messages", data)


def provider_for(settings: Settings, http: httpx.AsyncClient) -> SmsProvider:
    if settings.sms_provider == "twilio":
        return TwilioProvider(settings, http)
    return OutboxProvider()


async def send_sms(
    provider: SmsProvider,
    settings: Settings,
    to: str,
    text: str,
    conversation_id: str | None = None,
    split: bool = True,
    *,
    db: Database,
) -> list[OutboundSms]:
    """Send `text`: chat replies in one-segment parts; a message with a link whole (the provider
    concatenates it). Every part is recorded, sent or failed (through `db` when given)."""
    records = []
    for part in split_sms(text) if split else [text]:
        try:
            provider_id, status = await provider.send(to, part), "sent"
        except httpx.HTTPError:
            provider_id, status = None, "failed"
        records.append(
            OutboundSms(
                to_phone=to,
                body=part,
                provider=provider.name,
                provider_id=provider_id,
                status=status,
                conversation_id=conversation_id,
            )
        )

    def store(session: Session) -> None:
        session.add_all(records)

    await db.run(store)
    return records


async def send_reply(
    provider: SmsProvider,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    to: str,
    text: str,
    conversation_id: str,
    wrote_at: datetime,
    *,
    db: Database,
) -> bool:
    """Answer a person's SMS, through the same contact decision as every other send."""

    def decide(session: Session) -> compliance.Decision:
        return compliance.decide_contact(
            session,
            phone=to,
            account_pk=None,
            channel="sms",
            purpose="reply",
            at=clock.now(),
            rules=policy.contact,
            last_inbound_at=wrote_at,
        )

    decision = await db.run(decide, readonly=True)
    if decision.outcome != "send":
        log.warning("reply not sent", extra={"conversation_id": conversation_id, "reason": decision.reason})
        return False
    await send_sms(provider, settings, to, text, conversation_id, db=db)
    return True
