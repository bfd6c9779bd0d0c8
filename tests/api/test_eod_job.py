"""The end-of-day job as the gateway and `make eod` run it: a broken plan's holder is texted once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import httpx
import pytest
from sqlalchemy import select

from jobs.eod import run_once
from ledger import accounts, negotiation
from ledger.clock import Clock
from ledger.db import Database
from ledger.models import OutboundSms, Plan
from ledger.policy import Policy
from settings import get_settings
from tests.conftest import TZ
from tests.factories import record


def test_broken_plan_notice_goes_once_through_the_provider(
    db: Database, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("SMS_PROVIDER", "outbox")
    get_settings.cache_clear()
    agreed = Clock.at(datetime(2026, 4, 5, 10, tzinfo=TZ))
    rec = record(phone=f"134{uuid.uuid4().int % 10**8:08d}")
    with db.transaction() as s:
        accounts.upsert_account(s, rec)
        sit = negotiation.situation(s, rec.account_id, policy, agreed)
        offer = negotiation.offer_for(sit, "installment", agreed.today(), periods=3)
        plan, _ = negotiation.create_plan(s, rec.account_id, offer, "api", f"job-{rec.account_id}", agreed)
        plan_id = plan.plan_id

    async def tick(clock: Clock) -> None:
        async with httpx.AsyncClient() as http:
            await run_once(get_settings(), policy, clock, http, force=True, db=db)

    try:
        asyncio.run(tick(Clock.at(datetime(2026, 6, 9, 23, 0, tzinfo=TZ))))  # breaks tonight: quiet hours
        asyncio.run(tick(Clock.at(datetime(2026, 6, 10, 9, 0, tzinfo=TZ))))  # sent in the morning
        asyncio.run(tick(Clock.at(datetime(2026, 6, 12, 9, 0, tzinfo=TZ))))  # and never again
        with db.transaction(readonly=True) as s:
            sent = s.scalars(select(OutboundSms.body).where(OutboundSms.to_phone == rec.phone)).all()
            stored = s.scalars(select(Plan).where(Plan.plan_id == plan_id)).one()
            assert (stored.status, stored.notice) == ("broken", "sent")
        assert len(sent) == 1 and "退订" in sent[0] and "元" not in sent[0]
    finally:
        get_settings.cache_clear()
