"""End-of-day processing as a job: in the gateway (a background task) and in `make eod`.

The ledger decides (ledger/eod.py); this module runs it off the event loop and sends the
broken-plan notices the contact rules let go now, through the configured SMS provider.
"""

from __future__ import annotations

import asyncio
import logging

import httpx
from sqlalchemy.orm import Session

from api.channels.sms.provider import provider_for, send_sms
from ledger import eod
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.policy import Policy
from settings import Settings

log = logging.getLogger("api.eod")
FIRST_RUN_DELAY = 30.0  # seconds after start-up: let the gateway settle first
INTERVAL = 600.0  # how often the job wakes: runs end-of-day once a day, sends notices as the rules allow


async def run_once(
    settings: Settings, policy: Policy, clock: Clock, http: httpx.AsyncClient, force: bool = False, *, db: Database
) -> eod.EodSummary | None:
    """Today's end-of-day run unless it is done (or `force`), then the notices that may go now."""
    summary = None
    if force or not await asyncio.to_thread(eod.ran_today, db, clock):
        summary = await asyncio.to_thread(eod.run_eod, db, policy, clock)
        log.info("end-of-day done", extra=summary.as_dict())
    notices = await db.run(lambda s: eod.claim_notices(s, policy, clock))
    provider = provider_for(settings, http)
    for notice in notices:
        records = await send_sms(provider, settings, notice.phone, notice.text, split=False, db=db)
        ok = all(r.status == "sent" for r in records)

        def done(session: Session, notice: eod.Notice = notice, ok: bool = ok) -> None:
            eod.notice_sent(session, notice, ok, clock)

        await db.run(done)
    return summary


async def run_forever(
    settings: Settings, policy: Policy, http: httpx.AsyncClient, stop: asyncio.Event, *, db: Database
) -> None:
    clock = process_clock(settings.app_timezone)
    delay = FIRST_RUN_DELAY
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay)
            return
        except TimeoutError:
            pass
        delay = INTERVAL
        try:
            await run_once(settings, policy, clock, http, db=db)
        except Exception:  # keep the job alive; the next tick catches up (the run is idempotent)
            log.exception("end-of-day tick failed")
