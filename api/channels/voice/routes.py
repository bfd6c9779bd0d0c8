"""The voice webhooks (Twilio's Voice protocol) and the outbox of calls placed by the local provider."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from api.channels.twilio import form_doc, signed_form
from api.channels.voice.channel import VoiceChannel, VoiceTurn
from api.channels.voice.schemas import OutboxCall, VoiceForm
from api.chat import ChatDep
from api.deps import AdminDep, SessionDep
from api.limits import limiter, provider_limit
from api.schemas import errors
from api.schemas.common import PHONE_PATTERN, normalise_phone
from ledger import calls

router = APIRouter(prefix="/v1/voice", tags=["voice"], responses=errors(422, 503))
TWIML = {"description": "TwiML", "content": {"text/xml": {"schema": {"type": "string"}}}}
FORM_DOC = form_doc(VoiceForm)


def _xml(twiml: str) -> Response:
    return Response(twiml, media_type="text/xml")


def _channel(request: Request, service: ChatDep) -> VoiceChannel:
    return VoiceChannel(service, service.settings.voice_provider)


@router.post(
    "/inbound", response_class=Response, responses={200: TWIML, **errors(403, 413, 429)}, openapi_extra=FORM_DOC
)
@limiter.limit(provider_limit)
async def voice_inbound(request: Request, service: ChatDep) -> Response:
    """A call comes in (`Direction=inbound`), or a call we placed is answered (`Direction=outbound-api`,
    with `AnsweredBy`). A repeated request for the same `CallSid` gets the same answer."""
    form = await signed_form(request, service.settings, service.settings.voice_provider, VoiceForm)
    return _xml(await _channel(request, service).answer(form))


@router.post(
    "/gather", response_class=Response, responses={200: TWIML, **errors(403, 413, 429)}, openapi_extra=FORM_DOC
)
@limiter.limit(provider_limit)
async def voice_gather(
    request: Request, service: ChatDep, turn: Annotated[int | None, Query(ge=0, le=10_000)] = None
) -> Response:
    """What the caller said (`SpeechResult`, `Confidence`) or keyed (`Digits`) for the gather `turn`
    our TwiML pointed here; a replayed turn gets the answer it had."""
    form = await signed_form(request, service.settings, service.settings.voice_provider, VoiceForm)
    return _xml(await _channel(request, service).receive(VoiceTurn(form, turn)))


@router.post("/status", status_code=204, responses=errors(403, 413, 429), openapi_extra=FORM_DOC)
@limiter.limit(provider_limit)
async def voice_status(request: Request, service: ChatDep) -> Response:
    """Call progress (`CallStatus`, `AnsweredBy`); once the call has ended its outcome is recorded on
    the call and on the contact attempt that placed it. Unknown or repeated reports change nothing."""
    form = await signed_form(request, service.settings, service.settings.voice_provider, VoiceForm)
    await _channel(request, service).status(form)
    return Response(status_code=204)


@router.get("/outbox", response_model=list[OutboxCall], dependencies=[AdminDep], responses=errors(401))
def voice_outbox(session: SessionDep, to: Annotated[str, Query(pattern=PHONE_PATTERN)]) -> list[OutboxCall]:
    """The calls placed to this number, oldest first, each with the `url` the provider requests when
    it is answered (post it to /v1/voice/inbound with `Direction=outbound-api` to play the callee)."""
    phone = normalise_phone(to)
    return [
        OutboxCall(call_sid=c.call_sid, to=phone, url=c.url or "", status=c.status, created_at=c.created_at.isoformat())
        for c in calls.outbox(session, phone)
    ]
