"""Campaigns through the API and the sender: counts, template rules, send once, links."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.channels import links
from jobs.campaign_sender import CampaignSender, check_template
from ledger import accounts, campaigns
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.models import ContactAttempt, OutboundSms
from ledger.policy import Policy
from settings import get_settings
from tests.conftest import TZ
from tests.factories import record

KEY = "test-link-key"


def test_templates_name_the_bank_carry_an_opt_out_and_no_debt_detail(policy: Policy) -> None:
    assert check_template("reminder", policy) is None
    assert "cannot be rendered" in (check_template("nope", policy) or "")


@pytest.mark.calendar
def test_campaign_api_counts_and_defers_quiet_hours(client: TestClient, admin: dict[str, str]) -> None:
    tomorrow = process_clock().today() + timedelta(days=1)
    body = {
        "name": "夜间",
        "segment": {"buckets": ["M1", "M2", "M3"]},
        "template": "reminder",
        "send_at": datetime(tomorrow.year, tomorrow.month, tomorrow.day, 23, 30, tzinfo=TZ).isoformat(),
    }
    r = client.post("/v1/campaigns", json=body, headers=admin)
    assert r.status_code == 201, r.text
    out = r.json()
    assert set(out["skipped"]) == {
        "opted_out",
        "quiet_hours",
        "frequency_cap",
        "hold",
        "arrangement",
        "number_suppressed",
        "hardship",
    }
    assert out["skipped"]["quiet_hours"] == out["queued"]  # every send asked for 23:30 moves to 08:00
    status = client.get(f"/v1/campaigns/{out['campaign_id']}", headers=admin).json()
    assert status["selected"] == out["selected"] and status["progress"]["sent"] == 0
    assert client.post("/v1/campaigns", json={**body, "template": "nope"}, headers=admin).status_code == 422
    assert client.post("/v1/campaigns", json=body).status_code == 401
    bad = client.post("/v1/campaigns", json={**body, "segment": {"buckets": ["M9"]}}, headers=admin)
    assert bad.status_code == 422


@pytest.fixture
def settings_with_key(db: Database, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("LINK_SIGNING_KEY", KEY)
    monkeypatch.setenv("SMS_PROVIDER", "outbox")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_sender_sends_each_message_once_and_survives_a_crash(settings_with_key, db: Database, policy: Policy) -> None:  # type: ignore[no-untyped-def]
    settings = settings_with_key
    rec = record(phone=f"135{uuid.uuid4().int % 10**8:08d}")
    ten_am = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=TZ))
    with db.transaction() as s:
        accounts.upsert_account(s, rec)
        result = campaigns.create_campaign(s, "c", campaigns.Segment(("M1",)), "reminder", None, policy.contact, ten_am)
        attempt_ids = list(
            s.scalars(
                select(ContactAttempt.id).where(
                    ContactAttempt.campaign_pk == result.campaign.id, ContactAttempt.status == "queued"
                )
            )
        )

    async def run() -> tuple[int, int]:
        async with httpx.AsyncClient() as http:
            sender = CampaignSender(settings, policy, http, ten_am, db=db)
            first = 0
            while n := await sender.run_once(limit=1000):
                first += n
            return first, await sender.run_once(limit=1000)

    first, again = asyncio.run(run())
    assert first >= 1 and again == 0
    with db.transaction() as s:
        sent = s.scalars(select(OutboundSms).where(OutboundSms.to_phone == rec.phone)).all()
        assert len(sent) == 1
        text = sent[0].body
        assert "示例银行" in text and "退订" in text and "元" not in text and "逾期" not in text
        token = text.split("/chat?t=")[1].split()[0]
        assert links.verify(token, KEY, ten_am.now()) in attempt_ids
        # A crash after claiming: the in-flight send is never repeated.
        stuck = campaigns.create_campaign(
            s, "d", campaigns.Segment(("M1",)), "reminder", ten_am.now() + timedelta(days=2), policy.contact, ten_am
        )
        stuck_id = s.scalar(
            select(ContactAttempt.id).where(
                ContactAttempt.campaign_pk == stuck.campaign.id, ContactAttempt.status == "queued"
            )
        )
    assert stuck_id is not None
    with db.transaction() as s:
        assert campaigns.claim(s, stuck_id) and not campaigns.claim(s, stuck_id)
    later = ten_am.now() + timedelta(days=3)
    with db.transaction() as s:
        assert campaigns.abandon_stale(s, later) >= 1
        assert s.get(ContactAttempt, stuck_id).status == "failed"  # type: ignore[union-attr]


@pytest.mark.parametrize("queue_kind", ["database", "redis"])
def test_a_backlog_processed_at_23_sends_nothing_until_08(  # type: ignore[no-untyped-def]
    settings_with_key, db: Database, policy: Policy, queue_kind: str
) -> None:
    """The sender was down all day: at 23:00 it finds a 10:00 send due. It goes at 08:00, once."""
    from jobs.due_queue import DatabaseQueue, DueQueue, RedisQueue

    settings = settings_with_key
    key = f"test:due:{uuid.uuid4().hex}"
    queue: DueQueue = RedisQueue("redis://127.0.0.1:6379/0", key) if queue_kind == "redis" else DatabaseQueue()
    rec = record(phone=f"132{uuid.uuid4().int % 10**8:08d}")
    ten_am = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=TZ))
    with db.transaction() as s:
        accounts.upsert_account(s, rec)
        made = campaigns.create_campaign(s, "b", campaigns.Segment(("M1",)), "reminder", None, policy.contact, ten_am)
        attempt_id = s.scalar(
            select(ContactAttempt.id).where(
                ContactAttempt.campaign_pk == made.campaign.id, ContactAttempt.to_phone == rec.phone
            )
        )

    def sent_to_phone() -> int:
        with db.transaction() as s:
            return len(s.scalars(select(OutboundSms).where(OutboundSms.to_phone == rec.phone)).all())

    async def tick(when: datetime) -> None:
        async with httpx.AsyncClient() as http:
            sender = CampaignSender(settings, policy, http, Clock.at(when), queue=queue, db=db)
            while await sender.run_once(limit=1000):
                pass

    for when in (datetime(2026, 4, 5, 23, 0, tzinfo=TZ), datetime(2026, 4, 6, 7, 59, tzinfo=TZ)):
        asyncio.run(tick(when))
        assert sent_to_phone() == 0, when
    with db.transaction() as s:
        attempt = s.get(ContactAttempt, attempt_id)
        assert attempt is not None and (attempt.status, attempt.reason) == ("queued", "quiet_hours")
        assert attempt.scheduled_at == datetime(2026, 4, 6, 8, 0, tzinfo=TZ)
    asyncio.run(tick(datetime(2026, 4, 6, 8, 0, tzinfo=TZ)))
    asyncio.run(tick(datetime(2026, 4, 6, 9, 0, tzinfo=TZ)))
    assert sent_to_phone() == 1
    if isinstance(queue, RedisQueue):
        queue.redis.delete(key)


def test_links_are_signed_and_expire() -> None:
    now = datetime(2026, 4, 5, 10, 0, tzinfo=TZ)
    token = links.issue(42, KEY, now)
    assert links.verify(token, KEY, now) == 42
    assert links.verify(token, "other-key", now) is None
    _, expires, tag = token.split(".")
    assert links.verify(f"43.{expires}.{tag}", KEY, now) is None
    assert links.verify(token, KEY, now + timedelta(days=4)) is None
    assert links.verify("garbage", KEY, now) is None


def test_a_bad_link_is_refused(client: TestClient) -> None:
    r = client.post("/v1/chat/sessions", json={"link_token": "1.9999999999.forged"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "link_invalid"


def test_redis_queue_sends_once_and_rebuilds_from_the_database(settings_with_key, db: Database, policy: Policy) -> None:  # type: ignore[no-untyped-def]
    import redis as redis_lib

    from jobs.due_queue import RedisQueue

    url = "redis://127.0.0.1:6379/0"
    try:
        redis_lib.Redis.from_url(url).ping()
    except redis_lib.RedisError:
        pytest.fail("Redis is expected at 127.0.0.1:6379 (CI and developer machines run it)")
    key = f"test:due:{uuid.uuid4().hex}"
    settings = settings_with_key
    rec = record(phone=f"134{uuid.uuid4().int % 10**8:08d}")
    ten_am = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=TZ))
    with db.transaction() as s:
        accounts.upsert_account(s, rec)
        campaigns.create_campaign(s, "r", campaigns.Segment(("M1",)), "reminder", None, policy.contact, ten_am)

    async def drain(queue: RedisQueue) -> int:
        async with httpx.AsyncClient() as http:
            sender = CampaignSender(settings, policy, http, ten_am, queue=queue, db=db)
            total = 0
            while n := await sender.run_once(limit=1000):
                total += n
            return total

    first = RedisQueue(url, key)
    assert asyncio.run(drain(first)) >= 1
    # A Redis that lost everything is rebuilt from the database, and nothing is sent twice.
    first.redis.delete(key)
    assert asyncio.run(drain(RedisQueue(url, key))) == 0
    with db.transaction() as s:
        assert len(s.scalars(select(OutboundSms).where(OutboundSms.to_phone == rec.phone)).all()) == 1
    first.redis.delete(key)


def test_the_redis_due_queue_indexes_the_senders_attempts_never_the_dialers_calls(db: Database, policy: Policy) -> None:
    """Call attempts are placed by the voice dialer: indexed for the SMS sender they would be
    refused and dropped, then indexed again, for ever."""
    import redis as redis_lib

    from jobs.due_queue import RedisQueue

    url = "redis://127.0.0.1:6379/0"
    try:
        redis_lib.Redis.from_url(url).ping()
    except redis_lib.RedisError:
        pytest.fail("Redis is expected at 127.0.0.1:6379 (CI and developer machines run it)")
    rec = record(phone=f"134{uuid.uuid4().int % 10**8:08d}")
    ten_am = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=TZ))
    with db.transaction() as s:
        accounts.upsert_account(s, rec)
        campaigns.create_campaign(
            s, "c", campaigns.Segment(("M1",)), "reminder", None, policy.contact, ten_am, channel="voice"
        )
        calls = set(s.scalars(select(ContactAttempt.id).where(ContactAttempt.channel == "call")))
        campaigns.create_campaign(s, "s", campaigns.Segment(("M1",)), "reminder", None, policy.contact, ten_am)
        texts = set(
            s.scalars(
                select(ContactAttempt.id).where(ContactAttempt.channel == "sms", ContactAttempt.status == "queued")
            )
        )
    assert calls and texts
    queue = RedisQueue(url, f"test:due:{uuid.uuid4().hex}")
    try:
        with db.transaction() as s:
            indexed = set(queue.due(s, ten_am.now() + timedelta(days=30), 100_000))
        assert texts <= indexed and not (calls & indexed)
    finally:
        queue.redis.delete(queue.key)


def test_kpis_endpoint(client: TestClient, admin: dict[str, str]) -> None:
    assert client.get("/v1/kpis").status_code == 401
    body = client.get("/v1/kpis", headers=admin).json()
    for key in (
        "contact_rate",
        "rpc_rate",
        "ptp_rate",
        "promise_kept_rate",
        "plan_uptake",
        "recovery_rate",
        "roll_rate",
        "handoff_rate",
        "complaint_rate",
        "opt_out_rate",
        "containment",
        "cost_per_account",
        "by_bucket",
        "by_campaign",
        "by_channel",
    ):
        assert key in body
    assert client.get("/v1/kpis?from=2026-12-01&to=2026-11-01", headers=admin).status_code == 422
    assert client.get("/v1/kpis?from=2026-13-01", headers=admin).status_code == 422
