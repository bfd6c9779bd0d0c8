"""SMS channel: the provider's inbound webhook, its delivery receipts, and the outbox of the local provider."""

from __future__ import annotations

import hmac
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from api.channels.sms.channel import SmsDep, SmsMessage
from api.channels.sms.provider import valid_twilio_signature
from api.chat import BadInput
from api.deps import AdminDep, DatabaseDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.limits import limiter, public_limit
from api.schemas import OutboxSms, SmsInbound, SmsStatus, errors
from api.schemas.common import PHONE_PATTERN, normalise_phone
from ledger import receipts
from ledger.models import OutboundSms
from settings import Settings

Form = TypeVar("Form", bound=BaseModel)
router = APIRouter(prefix="/v1/sms", tags=["sms"], responses=errors(422, 503))
TWIML = {"description": "an empty TwiML answer", "content": {"text/xml": {"schema": {"type": "string"}}}}
SIGNATURE_HEADERS = [
    {
        "name": "X-SMS-Dev-Secret",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "SMS_PROVIDER=outbox: must equal SMS_INBOUND_DEV_SECRET",
    },
    {
        "name": "X-Twilio-Signature",
        "in": "header",
        "required": False,
        "schema": {"type": "string"},
        "description": "SMS_PROVIDER=twilio: Twilio's signature of the URL and form",
    },
]


def _form_doc(model: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a provider webhook: `model` as a form body, and the signature headers."""
    content = {"application/x-www-form-urlencoded": {"schema": model.model_json_schema()}}
    return {"requestBody": {"required": True, "content": content}, "parameters": SIGNATURE_HEADERS}


EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def _twiml() -> Response:
    return Response(EMPTY_TWIML, media_type="text/xml")


@router.post(
    "/inbound",
    response_class=Response,
    responses={200: TWIML, **errors(403, 413, 429)},
    openapi_extra=_form_doc(SmsInbound),
)
@limiter.limit(public_limit)
async def inbound(request: Request, channel: SmsDep) -> Response:
    """Twilio's form fields From, To, Body, MessageSid; replies go out through the provider.
    The signature (or, with the outbox provider, the dev secret) is checked before the fields."""
    fields = await _signed_form(request, channel.chat.settings, SmsInbound)
    try:
        phone = normalise_phone(fields.From)
    except ValueError as exc:
        raise ApiError(422, "validation_failed", str(exc)) from None
    try:
        await channel.receive(SmsMessage(phone, fields.Body, fields.MessageSid))
    except BadInput as exc:
        raise ApiError(422, "validation_failed", str(exc)) from None
    return _twiml()  # a provider's retry of a message already answered gets the same empty answer


@router.post("/status", status_code=204, responses=errors(403, 413, 429), openapi_extra=_form_doc(SmsStatus))
@limiter.limit(public_limit)
async def delivery_status(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response:
    """Twilio's status callback for an SMS we sent (MessageSid, MessageStatus), signed like the
    inbound webhook. It only moves a message forward (ledger/receipts.py); a replay, a late or
    unknown one changes nothing and is still acknowledged, so the provider does not retry it."""
    fields = await _signed_form(request, settings, SmsStatus)
    await db.run(lambda s: receipts.record_receipt(s, fields.MessageSid, fields.MessageStatus.lower()))
    return Response(status_code=204)


async def _signed_form(request: Request, settings: Settings, model: type[Form]) -> Form:
    """The provider's form as `model`, once its signature (or, with the outbox provider, the dev
    secret) is checked: 403 otherwise, before any field is read; 422 if the fields are not valid."""
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
        raise ApiError(403, "bad_signature", "SMS webhooks need header X-SMS-Dev-Secret (SMS_INBOUND_DEV_SECRET)")
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        problems = [{"loc": [str(p) for p in e["loc"]], "msg": e["msg"]} for e in exc.errors()]
        raise ApiError(422, "validation_failed", "the form is not valid", errors=problems) from None


def _dev_secret_ok(expected: str, given: str | None) -> bool:
    """Unset refuses everything: an outbox gateway without the secret takes no inbound SMS."""
    return bool(expected) and hmac.compare_digest(expected.encode(), (given or "").encode())


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
