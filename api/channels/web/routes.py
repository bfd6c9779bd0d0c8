"""Web chat routes: open a session, POST a message, GET the messages after a sequence number.

The server chooses the conversation id and gives the tab a session token; every call on the
conversation carries it as `Authorization: Bearer`. Without it, or with another
conversation's, 401 and nothing is stored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.auth import authorise_chat
from api.channels.web.channel import LinkInvalid, WebDep, WebMessage
from api.chat import BadInput, ChatDep, WrongChannel, chat_out
from api.errors import ApiError
from api.limits import count_turn, limiter, public_limit
from api.schemas import WEB_CONVERSATION_ID_PATTERN, ChatIn, ChatOut, SessionIn, SessionOut, errors
from api.schemas.links import link

router = APIRouter(prefix="/v1/chat", tags=["chat"], responses=errors(422, 429, 503))
ConversationId = Annotated[str, Path(pattern=WEB_CONVERSATION_ID_PATTERN)]
session_bearer = HTTPBearer(
    scheme_name="chatSession", description="the session_token of POST /v1/chat/sessions", auto_error=False
)
SessionToken = Annotated[HTTPAuthorizationCredentials | None, Depends(session_bearer)]
TO_CONVERSATION = {
    "send": link("post_message", conversation_id="$response.body#/conversation_id"),
    "read": link("get_messages", conversation_id="$response.body#/conversation_id"),
    "transcript": link("transcript", conversation_id="$response.body#/conversation_id"),
    "claim": link("claim", conversation_id="$response.body#/conversation_id"),
}


@router.post(
    "/sessions",
    status_code=status.HTTP_201_CREATED,
    response_model=SessionOut,
    responses={201: {"links": TO_CONVERSATION}, **errors(400, 403, 413)},
)
@limiter.limit(public_limit)
async def open_session(
    request: Request, channel: WebDep, body: Annotated[SessionIn | None, Body()] = None
) -> SessionOut:
    """A new web conversation. With `link_token` (our SMS link) it is tied to the account's phone and
    greeted in context; every redemption starts afresh, with no history; an expired link opens nothing."""
    try:
        opened = await channel.open_session(body.link_token if body else None)
    except LinkInvalid:
        raise ApiError(403, "link_invalid", "this link is not valid or has expired") from None
    return SessionOut(
        conversation_id=opened.conversation_id, session_token=opened.token, expires_at=opened.expires_at.isoformat()
    )


@router.post("/sessions/logout", status_code=status.HTTP_204_NO_CONTENT, responses=errors(401))
@limiter.limit(public_limit)
async def end_session(request: Request, service: ChatDep, token: SessionToken) -> None:
    """The holder ends the chat (结束对话): the session token opens nothing from now on (401), on
    HTTP and the WebSocket alike; the page's socket closes. A session also ends by itself after
    WEB_SESSION_IDLE_MINUTES without a message from the holder, and 12 hours after it opened."""
    if await service.end_session(token.credentials if token else "") is None:
        raise ApiError(401, "unauthorized", "a valid session token is required")


@router.post(
    "/{conversation_id}/messages",
    response_model=ChatOut,
    responses={200: {"links": TO_CONVERSATION}, **errors(400, 401, 404, 413)},
)
async def post_message(
    conversation_id: ConversationId, body: ChatIn, request: Request, channel: WebDep, token: SessionToken
) -> ChatOut:
    """422 bad_message: nothing left once control characters are dropped, or too long."""
    await authorise_chat(request, conversation_id, token.credentials if token else "", activity=True)
    await count_turn(request, conversation_id)
    try:
        result = await channel.receive(WebMessage(conversation_id, body.text))
    except BadInput as exc:
        raise ApiError(422, "bad_message", str(exc)) from None
    except WrongChannel:
        raise ApiError(404, "not_found", "no such web conversation") from None
    return chat_out(conversation_id, result.mode, result.replies)


@router.get("/{conversation_id}/messages", response_model=ChatOut, responses=errors(401))
@limiter.limit(public_limit)
async def get_messages(
    conversation_id: ConversationId,
    request: Request,
    service: ChatDep,
    token: SessionToken,
    after: Annotated[int, Query(ge=0, le=2**31 - 1, description="the last seq already seen")] = 0,
) -> ChatOut:
    await authorise_chat(request, conversation_id, token.credentials if token else "")
    mode, replies = await service.messages_after(conversation_id, after)
    return chat_out(conversation_id, mode, replies)
