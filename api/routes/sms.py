"""SMS channel: the provider's inbound webhook, and the outbox of the local provider."""

from __future__ import annotations

import hmac
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.chat import BadInput, ChatDep, ChatService, DuplicateMessage, Reply, clean_text
from api.deps import AdminDep, SessionDep
from api.errors import ApiError
from api.limits import limiter, public_limit
from api.schemas import normalise_phone
from api.sms import as_sms, provider_for, send_reply, valid_twilio_signature
from ledger import campaigns, conduct, conversations
from ledger.clock import process_clock
from ledger.db import run_transaction
from ledger.models import OutboundSms

router = APIRouter(prefix="/v1/sms", tags=["sms"])
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post("/inbound", response_class=Response)
@limiter.limit(public_limit)
async def inbound(request: Request, service: ChatDep) -> Response:
    """Twilio's form fields From, To, Body, MessageSid; replies go out through the provider."""
    settings = service.settings
    form = await request.form()
    params = {k: str(v) for k, v in form.items()}
    if settings.sms_provider == "twilio":
        # Twilio signs the URL it called; behind a proxy that is the public URL, not ours.
        url = f"{settings.public_base_url.rstrip('/')}{request.url.path}"
        if request.url.query:
            url += f"?{request.url.query}"
        token = settings.twilio_auth_token.get_secret_value()
        if not valid_twilio_signature(url, params, token, request.headers.get("X-Twilio-Signature")):
            raise ApiError(403, "bad_signature", "the request signature is not valid")
    elif not _dev_secret_ok(
        settings.sms_inbound_dev_secret.get_secret_value(), request.headers.get("X-SMS-Dev-Secret")
    ):
        # The local provider has no signature: only whoever holds var/secrets.env may play the phone.
        raise ApiError(403, "bad_signature", "inbound SMS needs header X-SMS-Dev-Secret (SMS_INBOUND_DEV_SECRET)")
    sid, sender, body = params.get("MessageSid", ""), params.get("From", ""), params.get("Body", "")
    if not sid:
        raise ApiError(422, "validation_failed", "MessageSid is required")
    try:
        phone = normalise_phone(sender)
        text = clean_text(body, settings.max_message_chars)
    except (ValueError, BadInput) as exc:
        raise ApiError(422, "validation_failed", str(exc)) from None
    cid = f"sms-{phone}"
    provider = provider_for(settings, request.app.state.http)
    wrote_at = service.clock.now()
    seeded = await _seed_if_replying_to_campaign(service, cid, phone)
    try:
        result = await service.handle(cid, text, "sms", external_id=sid, phone=phone)
    except DuplicateMessage:
        return _twiml()  # the provider retried: already answered once
    if conduct.is_sms_opt_out(text):
        # The number's owner decides what it receives: recorded here, whatever the bot says (or if it is away).
        await run_transaction(
            settings.database_url,
            lambda s: conduct.suppress_number(s, phone, "sms", "opt_out", service.clock, actor=cid),
        )
    for reply in [*seeded, *result.replies]:
        text_out = as_sms(reply.text, reply.buttons)
        await send_reply(provider, settings, service.policy, service.clock, phone, text_out, cid, wrote_at)
    return _twiml()


def _dev_secret_ok(expected: str, given: str | None) -> bool:
    """Unset refuses everything: an outbox gateway without the secret takes no inbound SMS."""
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


async def _seed_if_replying_to_campaign(service: ChatService, cid: str, phone: str) -> list[Reply]:
    """A first message from a phone our campaign wrote to in the last week starts in context."""
    settings = service.settings
    since = process_clock(settings.app_timezone).now() - timedelta(days=7)

    def lookup(session: Session) -> tuple[str, str] | None:
        if conversations.find(session, cid) is not None:
            return None
        return campaigns.recent_contact(session, phone, since)

    contact = await run_transaction(settings.database_url, lookup, readonly=True)
    if contact is None:
        return []
    account_id, campaign_id = contact
    result = await service.seed(
        cid, "EXTERNAL_outbound_contact", {"account": account_id, "campaign": campaign_id}, channel="sms"
    )
    return list(result.replies)


class OutboxItem(BaseModel):
    to: str
    body: str
    provider: str
    status: str
    created_at: str


@router.get("/outbox", response_model=list[OutboxItem], dependencies=[AdminDep])
def outbox(session: SessionDep, to: Annotated[str, Query()]) -> list[OutboxItem]:
    try:
        phone = normalise_phone(to)
    except ValueError as exc:
        raise ApiError(422, "validation_failed", str(exc)) from None
    rows = session.scalars(select(OutboundSms).where(OutboundSms.to_phone == phone).order_by(OutboundSms.id))
    return [
        OutboxItem(
            to=r.to_phone, body=r.body, provider=r.provider, status=r.status, created_at=r.created_at.isoformat()
        )
        for r in rows
    ]
