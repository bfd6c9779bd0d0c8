"""What a turn gives back: the replies stored for the holder, and the conversation's mode."""

from __future__ import annotations

from dataclasses import dataclass

from api.schemas import Button, ChatMessage, ChatOut


@dataclass
class Reply:
    seq: int
    text: str
    buttons: list[dict[str, str]] | None
    sender: str = "bot"


@dataclass
class TurnResult:
    mode: str
    replies: list[Reply]


def chat_out(conversation_id: str, mode: str, replies: list[Reply]) -> ChatOut:
    """The chat API's response shape, for HTTP turns, reads after a seq, WebSocket turns and links."""
    return ChatOut(
        conversation_id=conversation_id,
        mode=mode,
        messages=[
            ChatMessage(
                seq=r.seq,
                text=r.text,
                sender=r.sender,
                buttons=[Button(**b) for b in r.buttons] if r.buttons else None,
            )
            for r in replies
        ],
    )
