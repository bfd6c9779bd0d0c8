"""Whether a bearer token opens a web conversation, asked once per session rather than per message.

A web session never changes once opened: its conversation and its expiry are fixed and nothing
revokes one (ledger/sessions.py). So a token found live, or opened here, is remembered with its
expiry, and later messages only compare that expiry with the clock; an unknown or refused token
asks the database every time. The memory is bounded (least recently used dropped first).
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from datetime import datetime

from sqlalchemy.orm import Session

from ledger import sessions
from ledger.clock import Clock
from ledger.db import Database

REMEMBERED_SESSIONS = 4096  # about 330 bytes each


class SessionAccess:
    def __init__(self, db: Database, size: int = REMEMBERED_SESSIONS) -> None:
        self.db = db
        self.size = size
        self._live: OrderedDict[str, tuple[str, datetime]] = OrderedDict()  # token hash -> (conversation, expiry)

    def __len__(self) -> int:
        return len(self._live)

    def opened(self, session: sessions.OpenedSession) -> None:
        """A session this process just opened (and committed): its first message need not look it up."""
        self._remember(sessions.hash_token(session.token), (session.conversation_id, session.expires_at))

    def _remember(self, key: str, known: tuple[str, datetime]) -> None:
        self._live[key] = known
        self._live.move_to_end(key)
        while len(self._live) > self.size:
            self._live.popitem(last=False)

    async def allows(self, conversation_id: str, token: str, clock: Clock) -> bool:
        """True when `token` is a live session of exactly this conversation."""
        if not token:
            return False
        key = sessions.hash_token(token)
        known = self._live.get(key)
        if known is None:

            def look(session: Session) -> tuple[str, datetime] | None:
                conv = sessions.authorised(session, conversation_id, token, clock)
                expires = sessions.session_expiry(session, token) if conv is not None else None
                return (conv.conversation_id, expires) if conv is not None and expires is not None else None

            known = await self.db.run(look, readonly=True)
            if known is None:
                return False
            self._remember(key, known)
        else:
            self._live.move_to_end(key)
        owner, expires = known
        if expires <= clock.now():
            self._live.pop(key, None)
            return False
        return hmac.compare_digest(owner, conversation_id)
