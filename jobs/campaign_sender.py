"""Sends queued campaign messages when they are due: each claimed once, decided again, rendered, sent.

A send that finds itself in quiet hours (a backlog after downtime) is deferred to the holder's
next window and queued again; nothing here decides on its own (ledger/compliance.py does).

Runs inside the gateway (a background task) and in the `campaign` CLI. The queue is the
database (due rows) or, with REDIS_URL, a Redis sorted set; either way the database claim
decides who sends, so a restart or a second worker never sends twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

import httpx
from sqlalchemy.orm import Session

from api.channels import links
from api.channels.sms.campaign import check_template, render
from api.channels.sms.provider import provider_for, send_sms
from api.channels.wechat import reminders as wechat_reminders
from jobs.due_queue import DueQueue, queue_for
from ledger import campaigns
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.models import Campaign, ContactAttempt
from ledger.policy import Policy
from settings import Settings

log = logging.getLogger("api.campaigns")
__all__ = ["CampaignSender", "check_template", "render"]


@dataclass
class Outgoing:
    attempt_id: int
    phone: str
    text: str
    wechat: wechat_reminders.Reminder | None = None  # a WeChat template reminder instead of an SMS


class CampaignSender:
    def __init__(
        self,
        settings: Settings,
        policy: Policy,
        http: httpx.AsyncClient,
        clock: Clock | None = None,
        queue: DueQueue | None = None,
        *,
        db: Database,
    ):
        self.settings, self.policy, self.http, self.db = settings, policy, http, db
        self.clock = clock or process_clock(settings.app_timezone)
        self.queue = queue or queue_for(settings.redis_url)

    def _prepare(self, session: Session, attempt_id: int, now: datetime) -> Outgoing | None:
        if not campaigns.claim(session, attempt_id):
            return None  # another worker has it, or it was already sent
        attempt = session.get(ContactAttempt, attempt_id)
        assert attempt is not None
        # The one decision, made again at the moment of sending (ledger.campaigns): the window, the
        # person's caps on the day it actually goes, opt-outs, holds, arrangements and payments since
        # selection; for WeChat, a follower still bound. Here it is only acted on.
        decision = campaigns.decide_at_send_time(session, attempt, now, self.policy.contact)
        if decision.outcome == "defer":
            assert decision.send_at is not None
            self.queue.requeue(attempt.id, decision.send_at)
            return None
        if decision.outcome == "skip":
            return None
        found = session.get(Campaign, attempt.campaign_pk) if attempt.campaign_pk else None
        template = found.template if found else "reminder"
        token = links.issue(attempt.id, self.settings.link_signing_key.get_secret_value(), now)
        link = f"{self.settings.public_base_url.rstrip('/')}/chat?t={token}"
        if decision.openid is not None:  # a WeChat template reminder: api/channels/wechat/reminders.py
            reminder = wechat_reminders.Reminder(decision.openid, wechat_reminders.render(template, self.policy), link)
            return Outgoing(attempt.id, "", reminder.text, reminder)
        assert attempt.to_phone is not None  # set by the decision
        return Outgoing(attempt.id, attempt.to_phone, render(template, self.policy, link))

    async def run_once(self, limit: int = 200) -> int:
        """Send what is due now; returns how many went out."""
        now = self.clock.now()

        def take() -> list[Outgoing]:
            with self.db.transaction() as session:
                ids = self.queue.due(session, now, limit)
            prepared = []
            self.queue.done(ids)  # claimed here or elsewhere: either way no longer due (a deferral requeues)
            for attempt_id in ids:  # one short transaction per claim, so a crash loses at most one
                with self.db.transaction() as session:
                    item = self._prepare(session, attempt_id, now)
                if item:
                    prepared.append(item)
            return prepared

        batch = await asyncio.to_thread(take)  # takes from the due queue too: its own transactions
        provider = provider_for(self.settings, self.http)
        sent = 0
        for item in batch:
            if item.wechat is not None:
                ok = await wechat_reminders.send(self.settings, self.http, item.wechat, self.policy, db=self.db)
            else:
                records = await send_sms(provider, self.settings, item.phone, item.text, split=False, db=self.db)
                ok = all(r.status == "sent" for r in records)

            def finish(session: Session, item: Outgoing = item, ok: bool = ok) -> None:
                attempt = session.get(ContactAttempt, item.attempt_id)
                assert attempt is not None
                attempt.status = "sent" if ok else "failed"
                attempt.sent_at = self.clock.now()

            await self.db.run(finish)
            sent += ok
        return sent

    async def run_forever(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        def recover(session: Session) -> int:
            return campaigns.abandon_stale(session, self.clock.now())

        recovered = False
        while not stop.is_set():
            try:
                if not recovered:  # first, once the database answers (it may be away at start-up)
                    stale = await self.db.run(recover)
                    recovered = True
                    if stale:
                        log.warning("marked in-flight sends from before a restart as failed", extra={"count": stale})
                if await self.run_once() == 0:
                    await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                continue
            except Exception:  # keep the loop alive; the next tick retries what is still queued
                log.exception("campaign sender tick failed")
                await asyncio.sleep(interval)
