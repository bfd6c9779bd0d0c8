"""Web chat: sessions, a holder's message, the bot's and agents' replies."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.common import MAX_MESSAGE_CHARS, VISIBLE_TEXT_PATTERN, ConversationIdStr, Timestamp


class ChatIn(BaseModel):
    # Length and content are checked after control characters are dropped (422 bad_message).
    text: str = Field(
        min_length=1,
        json_schema_extra={"maxLength": MAX_MESSAGE_CHARS, "pattern": VISIBLE_TEXT_PATTERN},
        description=f"at most {MAX_MESSAGE_CHARS} characters (MAX_MESSAGE_CHARS), not only spaces or controls",
    )


class Button(BaseModel):
    title: str
    payload: str


class ChatMessage(BaseModel):
    seq: int = Field(ge=1)
    text: str
    sender: Literal["bot", "agent"] = "bot"
    buttons: list[Button] | None = None


class ChatOut(BaseModel):
    conversation_id: ConversationIdStr
    mode: Literal["bot", "human"]
    messages: list[ChatMessage]


class SessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    link_token: str | None = Field(default=None, max_length=200, description="the `t` of an SMS link /chat?t=")


class SessionOut(BaseModel):
    conversation_id: ConversationIdStr
    session_token: str = Field(description="send as `Authorization: Bearer` on every call of this conversation")
    expires_at: Timestamp
