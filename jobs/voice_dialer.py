"""Places the calls of voice campaigns when they are due: each claimed once, decided again at call
time by the same compliance rules (channel "call": windows, caps, opt-outs, holds, hardship), placed.

A sibling of jobs/campaign_sender.py, which leaves call attempts alone (ledger/campaigns.py)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import httpx
from sqlalchemy.orm import Session

from api.channels.voice.provider import voice_provider_for
from ledger import calls, campaigns
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.models import ContactAttempt
from ledger.policy import Policy
from settings import Settings

log = logging.getLogger("api.voice")
CALL = "call"


class VoiceDialer:
    def __init__(
        self, settings: Settings, policy: Policy, http: httpx.AsyncClient, clock: Clock | None = None, *, db: Database
    ) -> None:
        self.settings, self.policy, self.http, self.db = settings, policy, http, db
        self.clock = clock or process_clock(settings.app_timezone)
        self.provider = voice_provider_for(settings, http)
        base = settings.public_base_url.rstrip("/")
        self.answer_url = f"{base}/v1/voice/inbound"
        self.status_url = f"{base}/v1/voice/status"

    def _prepare(self, session: Session, attempt_id: int, now: datetime) -> str | None:
        if not campaigns.claim(session, attempt_id, channel=CALL):
            return None
        attempt = session.get(ContactAttempt, attempt_id)
        assert attempt is not None
        decision = campaigns.decide_at_send_time(session, attempt, now, self.policy.contact)
        if decision.outcome != "send":
            return None
        return attempt.to_phone

    async def run_once(self, limit: int = 50) -> int:
        """Place the calls due now; how many were placed."""
        now = self.clock.now()
        ids = await self.db.run(lambda s: campaigns.due_attempts(s, now, limit, channel=CALL), readonly=True)
        placed = 0
        for attempt_id in ids:
            phone = await self.db.run(lambda s, a=attempt_id: self._prepare(s, a, now))  # type: ignore[misc]
            if phone is None:
                continue
            try:
                sid: str | None = await self.provider.place(phone, self.answer_url, self.status_url)
            except httpx.HTTPError:
                log.warning("placing a call failed", extra={"attempt": attempt_id})
                sid = None

            def finish(session: Session, attempt_id: int = attempt_id, sid: str | None = sid) -> None:
                attempt = session.get(ContactAttempt, attempt_id)
                assert attempt is not None
                attempt.status = "sent" if sid else "failed"
                attempt.sent_at = self.clock.now()
                if sid:
                    calls.placed(session, attempt, sid, self.answer_url, self.provider.name)

            await self.db.run(finish)
            placed += sid is not None
        return placed

    async def run_forever(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        while not stop.is_set():
            try:
                if await self.run_once() == 0:
                    await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                continue
            except Exception:  # keep dialling; the next tick retries what is still queued
                log.exception("voice dialer tick failed")
                await asyncio.sleep(interval)
