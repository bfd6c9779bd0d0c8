"""The record of a conversation: every message both ways, masked."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from api.auth import AdminOrPrincipalDep
from api.deps import SessionDep
from api.errors import ApiError
from ledger import agents, conversations
from ledger.masking import mask
from ledger.models import Message

router = APIRouter(prefix="/v1/conversations", tags=["transcripts"])


class TranscriptEntry(BaseModel):
    seq: int
    at: str
    sender: str
    channel: str
    text: str
    intent: str | None
    confidence: float | None


class Transcript(BaseModel):
    conversation_id: str
    channel: str
    mode: str
    verified: bool
    messages: list[TranscriptEntry]


@router.get("/{conversation_id}/transcript", response_model=Transcript)
def transcript(conversation_id: str, session: SessionDep, principal: AdminOrPrincipalDep) -> Transcript:
    """The admin and supervisors read any transcript; an agent only one it has claimed."""
    conv = conversations.find(session, conversation_id)
    if conv is None or not agents.may_read(session, principal.role, principal.username, conversation_id):
        raise ApiError(404, "not_found", "no such conversation, or not one you have claimed")
    rows = session.scalars(select(Message).where(Message.conversation_pk == conv.id).order_by(Message.seq))
    return Transcript(
        conversation_id=conv.conversation_id,
        channel=conv.channel,
        mode=conv.mode,
        verified=conv.verified_at is not None,
        messages=[
            TranscriptEntry(
                seq=m.seq,
                at=m.created_at.isoformat(),
                sender=m.sender,
                channel=m.channel,
                text=mask(m.text),
                intent=m.intent if m.sender == "user" else None,
                confidence=m.confidence if m.sender == "user" else None,
            )
            for m in rows
        ],
    )
