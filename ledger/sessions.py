"""Web chat sessions: the server chooses the conversation id and hands the tab a bearer token.

Only the token's SHA-256 is stored, so a copy of the database opens no conversation. A link
from our SMS opens a fresh conversation each time it is redeemed, tied to the account's
phone and with no history: whoever holds the SMS later sees nothing said before.

A session ends at the first of: 12 hours after it opened (sooner for a link's), the holder ending
it (结束对话: `end_session`), or `idle` without a message from the holder (the conversation's
`last_holder_at`; opening counts as one). A shared phone or computer left on the page is then
no way into the conversation.
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
    opened_at: datetime


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
    return OpenedSession(cid, token, expires, now)


@dataclass(frozen=True)
class LiveSession:
    """What decides whether a session still opens its conversation."""

    conversation_id: str
    expires_at: datetime
    last_active: datetime  # the holder's last message, or the opening


def live_session(session: Session, token: str, clock: Clock, idle: timedelta | None = None) -> LiveSession | None:
    """The session of `token` if it has not ended (expired, ended by the holder, or idle)."""
    if not token:
        return None
    row = session.execute(
        select(ChatSession, Conversation.conversation_id, Conversation.last_holder_at)
        .join(Conversation, Conversation.id == ChatSession.conversation_pk)
        .where(ChatSession.token_hash == hash_token(token))
    ).first()
    if row is None:
        return None
    chat_session, conversation_id, last_holder_at = row
    live = LiveSession(
        conversation_id, chat_session.expires_at, max(filter(None, (chat_session.created_at, last_holder_at)))
    )
    return live if chat_session.ended_at is None and still_live(live, clock.now(), idle) else None


def still_live(live: LiveSession, now: datetime, idle: timedelta | None) -> bool:
    """Neither past its expiry nor idle for `idle` (None: no idle limit)."""
    return live.expires_at > now and (idle is None or live.last_active + idle > now)


def authorised(
    session: Session, conversation_id: str, token: str, clock: Clock, idle: timedelta | None = None
) -> Conversation | None:
    """The conversation if `token` is a live session of exactly this conversation, else None."""
    live = live_session(session, token, clock, idle)
    if live is None or not hmac.compare_digest(live.conversation_id, conversation_id):
        return None
    return session.scalar(select(Conversation).where(Conversation.conversation_id == conversation_id))


def end_session(session: Session, token: str, clock: Clock) -> str | None:
    """The holder ends the session (结束对话): its token opens nothing from now on. The conversation
    id it ended, or None when the token was not a live session."""
    chat_session = session.scalar(
        select(ChatSession).where(ChatSession.token_hash == hash_token(token)).with_for_update()
    )
    if chat_session is None or chat_session.ended_at is not None or chat_session.expires_at <= clock.now():
        return None
    chat_session.ended_at = clock.now()
    conversation_id = session.scalar(
        select(Conversation.conversation_id).where(Conversation.id == chat_session.conversation_pk)
    )
    audit(session, conversation_id or "", "session.ended", conversation_id or "", at=clock.now())
    return conversation_id


def session_expiry(session: Session, token: str) -> datetime | None:
    return session.scalar(select(ChatSession.expires_at).where(ChatSession.token_hash == hash_token(token)))
