"""The record of a conversation: every message both ways, masked."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from api.auth import AdminOrPrincipalDep
from api.deps import SessionDep
from api.schemas import CONVERSATION_ID_PATTERN, Transcript, errors
from api.views import transcript_for

router = APIRouter(prefix="/v1/conversations", tags=["transcripts"])


@router.get("/{conversation_id}/transcript", response_model=Transcript, responses=errors(401, 404, 422, 503))
def transcript(
    conversation_id: Annotated[str, Path(pattern=CONVERSATION_ID_PATTERN)],
    session: SessionDep,
    principal: AdminOrPrincipalDep,
) -> Transcript:
    """The admin and supervisors read any transcript; an agent only one it has claimed."""
    return transcript_for(session, conversation_id, principal.role, principal.username)
