"""WeChat channel: the Official Account's callback (handshake and pushes) and the local outbox."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select

from api.channels.wechat.channel import WeChatDep
from api.channels.wechat.provider import BadPush, BadSignature, read_push, valid_signature
from api.deps import AdminDep, ClockDep, DatabaseDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.schemas import Outbox, OutboxMessage, errors
from ledger import wechat
from ledger.models import WeChatOutbound

router = APIRouter(prefix="/v1/wechat", tags=["wechat"], responses=errors(422, 503))
Param = Annotated[str, Query(max_length=128)]
PushParam = Annotated[str | None, Query(max_length=512)]
# The answers WeChat reads are plain text; errors are the API's JSON error body.
TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}
PUSH_BODY = {
    "requestBody": {
        "required": True,
        "description": "WeChat's XML push (plain, or safe mode's <Encrypt>)",
        "content": {"text/xml": {"schema": {"type": "string"}}},
    }
}


@router.get(
    "/callback",
    response_class=Response,
    responses={200: {**TEXT, "description": "`echostr`, as given"}, **errors(403)},
)
def handshake(signature: Param, timestamp: Param, nonce: Param, echostr: Param, settings: SettingsDep) -> Response:
    """WeChat's server verification: echo `echostr` when the signature is ours."""
    if not valid_signature(settings.wechat_token.get_secret_value(), signature, timestamp, nonce):
        raise ApiError(403, "bad_signature", "the request signature is not valid")
    return PlainTextResponse(echostr)


@router.post(
    "/callback",
    response_class=Response,
    responses={200: {**TEXT, "description": '"success"'}, **errors(400, 403, 413)},
    openapi_extra=PUSH_BODY,
)
async def callback(
    request: Request,
    background: BackgroundTasks,
    channel: WeChatDep,
    db: DatabaseDep,
    clock: ClockDep,
    signature: PushParam = None,
    timestamp: PushParam = None,
    nonce: PushParam = None,
    openid: PushParam = None,
    encrypt_type: PushParam = None,
    msg_signature: PushParam = None,
) -> Response:
    """A message or event push: checked, stored once, answered at once; the turn runs after the
    answer and its replies go out through the customer-service API. 403 `stale_push` when the
    signed timestamp is more than 5 minutes from now, `replayed_push` when its signature already
    carried another push."""
    settings = channel.settings
    given = {
        "signature": signature,
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": openid,
        "encrypt_type": encrypt_type,
        "msg_signature": msg_signature,
    }
    params = {k: v for k, v in given.items() if v is not None}
    try:
        push = read_push(settings, await request.body(), params)
    except BadSignature:
        raise ApiError(403, "bad_signature", "the request signature is not valid") from None
    except BadPush as exc:
        raise ApiError(400, "bad_push", str(exc)) from None
    signed = (timestamp or "", nonce or "", signature or "")
    try:
        fresh = await db.run(
            lambda s: wechat.record_signed_push(
                s, signed, (push.dedupe_key, push.openid, push.kind), asdict(push), clock.now()
            )
        )
    except (wechat.StalePush, wechat.ReplayedPush) as exc:  # a captured push sent again: nothing stored
        raise ApiError(403, exc.code, exc.message) from None
    if fresh:  # a retry of a push already stored is answered and dropped
        background.add_task(channel.receive, push)
    return PlainTextResponse("success", background=background)


@router.get("/outbox", response_model=Outbox, dependencies=[AdminDep], responses=errors(401))
def wechat_outbox(session: SessionDep, openid: Annotated[str, Query(min_length=1, max_length=64)]) -> Outbox:
    rows = session.scalars(select(WeChatOutbound).where(WeChatOutbound.openid == openid).order_by(WeChatOutbound.id))
    return Outbox(
        messages=[
            OutboxMessage.model_validate(
                {
                    "openid": r.openid,
                    "kind": r.kind,
                    "text": r.text,
                    "status": r.status,
                    "sent_at": r.created_at.isoformat(),
                }
            )
            for r in rows
        ]
    )
