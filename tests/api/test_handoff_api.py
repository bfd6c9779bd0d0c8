"""Issue 29 through the gateway: agents' presence, what a claim shows, the handoff KPIs, and a
wait that runs out while nobody takes the holder (the gateway's own look)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from ledger import conversations, duty, handoff
from ledger.clock import Clock
from ledger.db import Database
from ledger.models import Conversation, Message
from ledger.policy import Policy
from tests.api.conftest import WebChat
from tests.api.test_agents_api import login, make_agent
from tests.fake_rasa import Answer, chat_service, says


def test_an_agent_says_it_is_available_or_away_and_hears_whether_its_team_is_on_duty(
    client: TestClient, admin: dict[str, str], policy: Policy, suite_clock: Clock
) -> None:
    agent = login(client, make_agent(client, admin))
    r = client.post("/v1/agent/presence", json={"status": "available"}, headers=agent)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "available" and body["team"] == "collections"
    assert body["on_duty"] == ("collections" in duty.teams_on_duty(policy.handoff, suite_clock.now()))
    assert client.post("/v1/agent/presence", json={"status": "asleep"}, headers=agent).status_code == 422
    assert client.post("/v1/agent/presence", json={"status": "away"}, headers=admin).status_code == 401
    assert client.post("/v1/agent/presence", json={"status": "away"}, headers=agent).json()["status"] == "away"


def test_a_claim_carries_the_summary_and_no_account_for_a_holder_who_never_verified(
    client: TestClient, admin: dict[str, str], web: WebChat
) -> None:
    agent = login(client, make_agent(client, admin))
    cid = web.cid("claim-summary")
    web.post("claim-summary", "我想问下欠款")  # Rasa is down here: a ticket for people
    r = client.post(f"/v1/agent/conversations/{cid}/claim", headers=agent)
    assert r.status_code == 200, r.text
    claimed = r.json()
    assert claimed["account"] is None  # verification facts and account details only after verifying
    assert set(claimed["summary"]) == {"asked", "offered", "refused", "situation", "callback_at"}
    item = next(i for i in client.get("/v1/agent/queue", headers=agent).json() if i["conversation_id"] == cid)
    assert item["status"] == "claimed" and item["callback_at"] is None


def test_kpis_show_the_handoffs(client: TestClient, admin: dict[str, str]) -> None:
    r = client.get("/v1/kpis", headers=admin)
    assert r.status_code == 200, r.text
    handoffs = r.json()["handoffs"]
    assert {
        "requested",
        "claimed",
        "minutes_to_claim_median",
        "abandoned_waits",
        "withdrawn",
        "timed_out",
        "callbacks",
        "callbacks_kept",
        "callback_kept_rate",
    } <= set(handoffs)
    assert "handoff_rate" in r.json()


def test_a_parked_holder_nobody_took_is_told_and_given_back_to_the_bot(db: Database, policy: Policy) -> None:
    cid = f"wait-{uuid.uuid4().hex[:8]}"
    resumed: list[str] = []

    def answer(method: str, path: str, body: Any) -> Answer:
        if path.endswith("/tracker/events"):
            resumed.append(path)
        return says("好的")

    async def run(clock: Clock) -> list[str]:
        async with chat_service(db, answer) as service:
            service.clock = clock
            return await service.end_long_waits()

    with db.transaction() as s:
        conv = conversations.get_or_create(s, cid, "web")
        ticket = conversations.open_ticket(s, conv, "requested", 2, "转人工")
        started = ticket.created_at
    late = Clock.at(started + timedelta(minutes=policy.handoff.max_wait_minutes, seconds=1))
    early = Clock.at(started + timedelta(minutes=policy.handoff.max_wait_minutes - 1))
    assert cid not in asyncio.run(run(early))
    assert cid in asyncio.run(run(late))
    assert resumed  # the bot listens again
    with db.transaction() as s:
        conv_row = s.scalar(select(Conversation).where(Conversation.conversation_id == cid))
        assert conv_row is not None and conv_row.mode == "bot"
        told = s.scalars(select(Message.text).where(Message.conversation_pk == conv_row.id, Message.sender == "bot"))
        assert any("久等" in t for t in told)
        assert handoff.waiting_of(s, conv_row.id, policy, late.now()) is None
    assert cid not in asyncio.run(run(late))  # told once
