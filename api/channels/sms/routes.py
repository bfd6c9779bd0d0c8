"""SMS channel: the provider's inbound webhook, its delivery receipts, and the outbox of the local provider."""

from __future__ import annotations

from typing import Annotated, TypeVar

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel
from sqlalchemy import select

from api.channels.sms.channel import SmsDep, SmsMessage
from api.channels.twilio import form_doc, signed_form
from api.chat import BadInput
from api.deps import AdminDep, DatabaseDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.limits import limiter, provider_limit
from api.schemas import OutboxSms, SmsInbound, SmsStatus, errors
from api.schemas.common import PHONE_PATTERN, normalise_phone
from ledger import receipts
from ledger.models import OutboundSms

Form = TypeVar("Form", bound=BaseModel)
router = APIRouter(prefix="/v1/sms", tags=["sms"], responses=errors(422, 503))
TWIML = {"description": "an empty TwiML answer", "content": {"text/xml": {"schema": {"type": "string"}}}}
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post(
    "/inbound",
    response_class=Response,
    responses={200: TWIML, **errors(403, 413, 429)},
    openapi_extra=form_doc(SmsInbound),
)
@limiter.limit(provider_limit)
async def inbound(request: Request, channel: SmsDep) -> Response:
    """Twilio's form fields From, To, Body, MessageSid; replies go out through the provider.
    The signature (or, with the outbox provider, the dev secret) is checked before the fields."""
    settings = channel.chat.settings
    fields = await signed_form(request, settings, settings.sms_provider, SmsInbound)
    try:
        phone = normalise_phone(fields.From)
    except ValueError as exc:
        raise ApiError(422, "validation_failed", str(exc)) from None
    try:
        await channel.receive(SmsMessage(phone, fields.Body, fields.MessageSid))
    except BadInput as exc:
        raise ApiError(422, "validation_failed", str(exc)) from None
    return _twiml()  # a provider's retry of a message already answered gets the same empty answer


@router.post("/status", status_code=204, responses=errors(403, 413, 429), openapi_extra=form_doc(SmsStatus))
@limiter.limit(provider_limit)
async def delivery_status(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response:
    """Twilio's status callback for an SMS we sent (MessageSid, MessageStatus), signed like the
    inbound webhook. It only moves a message forward (ledger/receipts.py); a replay, a late or
    unknown one changes nothing and is still acknowledged, so the provider does not retry it."""
    fields = await signed_form(request, settings, settings.sms_provider, SmsStatus)
    await db.run(lambda s: receipts.record_receipt(s, fields.MessageSid, fields.MessageStatus.lower()))
    return Response(status_code=204)


@router.get("/outbox", response_model=list[OutboxSms], dependencies=[AdminDep], responses=errors(401))
def sms_outbox(session: SessionDep, to: Annotated[str, Query(pattern=PHONE_PATTERN)]) -> list[OutboxSms]:
    """What the `outbox` provider "sent" to this number, oldest first."""
    phone = normalise_phone(to)
    rows = session.scalars(select(OutboundSms).where(OutboundSms.to_phone == phone).order_by(OutboundSms.id))
    return [
        OutboxSms.model_validate(
            {
                "to": r.to_phone,
                "body": r.body,
                "provider": r.provider,
                "status": r.status,
                "created_at": r.created_at.isoformat(),
            }
        )
        for r in rows
    ]
