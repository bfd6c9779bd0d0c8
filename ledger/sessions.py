"""Web chat sessions: the server chooses the conversation id and hands the tab a bearer token.

Only the token's SHA-256 is stored, so a copy of the database opens no conversation. A link
from our SMS opens a fresh conversation each time it is redeemed, tied to the account's
phone and with no history: whoever holds the SMS later sees nothing said before.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import conversations
from ledger.accounts import audit
from ledger.clock import Clock
from ledger.models import ChatSession, Conversation

SESSION_LIFETIME = timedelta(hours=12)


@dataclass(frozen=True)
class OpenedSession:
    conversation_id: str
    token: str
    expires_at: datetime


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_conversation_id(prefix: str = "web") -> str:
    """Unguessable, and in the chat API's id alphabet ([A-Za-z0-9_-], 8-64 chars)."""
    return f"{prefix}-{secrets.token_urlsafe(18)}"


def open_session(
    session: Session,
    clock: Clock,
    *,
    phone: str | None = None,
    link_attempt_pk: int | None = None,
    not_after: datetime | None = None,
    lifetime: timedelta = SESSION_LIFETIME,
) -> OpenedSession:
    """A new web conversation and its token. `phone` ties it to an account's holder (a link)."""
    now = clock.now()
    expires = now + lifetime if not_after is None else min(now + lifetime, not_after)
    cid = new_conversation_id("lnk" if link_attempt_pk is not None else "web")
    conv = conversations.get_or_create(session, cid, "web")
    if phone:
        conversations.claim_phone(session, conv, phone, proven=True)  # the number the link was sent to
    token = secrets.token_urlsafe(32)
    session.add(
        ChatSession(
            token_hash=hash_token(token), conversation_pk=conv.id, link_attempt_pk=link_attempt_pk, expires_at=expires
        )
    )
    if link_attempt_pk is not None:
        earlier = session.scalar(select(ChatSession.id).where(ChatSession.link_attempt_pk == link_attempt_pk).limit(1))
        audit(session, cid, "link.redeemed", str(link_attempt_pk), first=earlier is None)
    session.flush()
    return OpenedSession(cid, token, expires)


def authorised(session: Session, conversation_id: str, token: str, clock: Clock) -> Conversation | None:
    """The conversation if `token` is a live session of exactly this conversation, else None."""
    if not token:
        return None
    row = session.execute(
        select(ChatSession, Conversation)
        .join(Conversation, Conversation.id == ChatSession.conversation_pk)
        .where(ChatSession.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    chat_session, conv = row
    if not hmac.compare_digest(conv.conversation_id, conversation_id) or chat_session.expires_at <= clock.now():
        return None
    return conv


def session_expiry(session: Session, token: str) -> datetime | None:
    return session.scalar(select(ChatSession.expires_at).where(ChatSession.token_hash == hash_token(token)))
