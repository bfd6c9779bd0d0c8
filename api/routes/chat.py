"""Web chat API: POST a message, GET the messages after a sequence number."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from pydantic import AfterValidator

from api.chat import BadInput, ChatService, WrongChannel, chat_out, clean_text
from api.errors import ApiError
from api.limits import limiter, public_limit
from api.schemas import ChatIn, ChatOut

router = APIRouter(prefix="/v1/chat", tags=["chat"])


def _not_an_sms_conversation(value: str) -> str:
    if value.startswith("sms-"):
        raise ValueError("sms- conversations belong to the SMS channel")
    return value


# Web conversation ids are the caller's choice, except the prefix the SMS channel uses.
ConversationId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{8,64}$"), AfterValidator(_not_an_sms_conversation)]


def _service(request: Request) -> ChatService:
    return request.app.state.chat  # type: ignore[no-any-return]


@router.post("/{conversation_id}/messages", response_model=ChatOut)
@limiter.limit(public_limit)
async def post_message(conversation_id: ConversationId, body: ChatIn, request: Request) -> ChatOut:
    service = _service(request)
    try:
        text = clean_text(body.text, service.settings.max_message_chars)
    except BadInput as exc:
        raise ApiError(422, "bad_message", str(exc)) from None
    try:
        result = await service.handle(conversation_id, text, "web")
    except WrongChannel:
        raise ApiError(404, "not_found", "no such web conversation") from None
    return chat_out(conversation_id, result.mode, result.replies)


@router.get("/{conversation_id}/messages", response_model=ChatOut)
@limiter.limit(public_limit)
async def get_messages(
    conversation_id: ConversationId, request: Request, after: Annotated[int, Query(ge=0)] = 0
) -> ChatOut:
    mode, replies = await _service(request).messages_after(conversation_id, after)
    return chat_out(conversation_id, mode, replies)
