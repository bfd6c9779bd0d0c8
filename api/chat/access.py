"""Whether a bearer token opens a web conversation, asked of the database once per session rather
than per message.

A session is remembered with its conversation, its expiry and when the holder last wrote, so later
messages compare those with the clock. What can end a session sooner is checked so that nothing
remembered outlives it:

- the holder ends it (结束对话): `ended()` forgets it here, and the other gateway workers forget it
  when they hear the hub's `sessions_ended` event (`forget_conversation`);
- idle: when the remembered last message is `idle` old, the database is asked again (another
  worker may have seen a later message) before the token is refused;
- and whatever is remembered is looked up again after `RECHECK` anyway, so a lost event delays an
  end by at most that.

An unknown or refused token asks the database every time. The memory is bounded (least recently
used dropped first).
"""

from __future__ import annotations

import hmac
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import timedelta

from sqlalchemy.orm import Session

from ledger import sessions
from ledger.clock import Clock
from ledger.db import Database

REMEMBERED_SESSIONS = 4096  # about 400 bytes each
RECHECK_SECONDS = 30.0  # a remembered session is looked up again after this long


@dataclass(frozen=True)
class _Known:
    live: sessions.LiveSession
    checked: float  # time.monotonic() of the last look in the database


class SessionAccess:
    def __init__(
        self,
        db: Database,
        size: int = REMEMBERED_SESSIONS,
        idle: timedelta | None = None,
        recheck: float = RECHECK_SECONDS,
    ) -> None:
        self.db = db
        self.size = size
        self.idle = idle
        self.recheck = recheck
        self._live: OrderedDict[str, _Known] = OrderedDict()  # token hash -> what decides it

    def __len__(self) -> int:
        return len(self._live)

    def opened(self, session: sessions.OpenedSession) -> None:
        """A session this process just opened (and committed): its first message need not look it up."""
        live = sessions.LiveSession(session.conversation_id, session.expires_at, session.opened_at)
        self._remember(sessions.hash_token(session.token), live)

    def ended(self, token: str) -> None:
        """The holder ended this session: forget it at once."""
        self._live.pop(sessions.hash_token(token), None)

    def forget_conversation(self, conversation_id: str) -> None:
        """Another worker ended this conversation's session: forget it (asked again next time)."""
        for key in [k for k, known in self._live.items() if known.live.conversation_id == conversation_id]:
            self._live.pop(key, None)

    def _remember(self, key: str, live: sessions.LiveSession) -> None:
        self._live[key] = _Known(live, time.monotonic())
        self._live.move_to_end(key)
        while len(self._live) > self.size:
            self._live.popitem(last=False)

    async def _look(self, token: str, clock: Clock) -> sessions.LiveSession | None:
        def look(session: Session) -> sessions.LiveSession | None:
            return sessions.live_session(session, token, clock, self.idle)

        return await self.db.run(look, readonly=True)

    async def allows(self, conversation_id: str, token: str, clock: Clock, activity: bool = False) -> bool:
        """True when `token` is a live session of exactly this conversation. `activity`: the holder
        is writing a message now (the idle clock starts again)."""
        if not token:
            return False
        key = sessions.hash_token(token)
        now = clock.now()
        known = self._live.get(key)
        if known is not None and known.live.expires_at <= now:  # an expiry never moves: no need to ask
            self._live.pop(key, None)
            return False
        fresh = known is not None and time.monotonic() - known.checked < self.recheck
        if known is None or not fresh or not sessions.still_live(known.live, now, self.idle):
            live = await self._look(token, clock)
            if live is None:
                self._live.pop(key, None)
                return False
            self._remember(key, live)
        else:
            self._live.move_to_end(key)
        known = self._live[key]
        if not hmac.compare_digest(known.live.conversation_id, conversation_id):
            return False
        if activity:
            self._live[key] = replace(known, live=replace(known.live, last_active=now))
        return True
