"""WeChat channel: the Official Account's callback (handshake and pushes) and the local outbox."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import select

from api.deps import AdminDep, SessionDep, SettingsDep
from api.errors import ApiError
from api.wechat import BadPush, BadSignature, read_push, valid_signature
from api.wechat_channel import WeChatDep
from ledger import wechat
from ledger.db import run_transaction
from ledger.models import WeChatOutbound

router = APIRouter(prefix="/v1/wechat", tags=["wechat"])
Param = Annotated[str, Query(max_length=128)]


@router.get("/callback", response_class=PlainTextResponse)
def handshake(signature: Param, timestamp: Param, nonce: Param, echostr: Param, settings: SettingsDep) -> str:
    """WeChat's server verification: echo `echostr` when the signature is ours."""
    if not valid_signature(settings.wechat_token.get_secret_value(), signature, timestamp, nonce):
        raise ApiError(403, "bad_signature", "the request signature is not valid")
    return echostr


@router.post("/callback", response_class=PlainTextResponse)
async def callback(request: Request, channel: WeChatDep, background: BackgroundTasks) -> str:
    """A message or event push: checked, stored once, answered at once; the turn runs after the
    answer and its replies go out through the customer-service API."""
    settings = channel.settings
    params = {k: v for k, v in request.query_params.items() if len(v) <= 512}
    try:
        push = read_push(settings, await request.body(), params)
    except BadSignature:
        raise ApiError(403, "bad_signature", "the request signature is not valid") from None
    except BadPush as exc:
        raise ApiError(400, "bad_push", str(exc)) from None
    fresh = await run_transaction(
        settings.database_url, lambda s: wechat.record_push(s, push.dedupe_key, push.openid, push.kind, asdict(push))
    )
    if fresh:  # a retry of a push already stored is answered and dropped
        background.add_task(channel.process, push)
    return "success"


class OutboxMessage(BaseModel):
    openid: str
    kind: str
    text: str
    status: str
    sent_at: str


class Outbox(BaseModel):
    messages: list[OutboxMessage]


@router.get("/outbox", response_model=Outbox, dependencies=[AdminDep])
def outbox(session: SessionDep, openid: Annotated[str, Query(min_length=1, max_length=64)]) -> Outbox:
    rows = session.scalars(select(WeChatOutbound).where(WeChatOutbound.openid == openid).order_by(WeChatOutbound.id))
    return Outbox(
        messages=[
            OutboxMessage(openid=r.openid, kind=r.kind, text=r.text, status=r.status, sent_at=r.created_at.isoformat())
            for r in rows
        ]
    )
