"""A person when one is needed, and never silence (issue 29), through the whole stack: nobody on
duty, an agent on duty who claims, a withdrawal, a wait that runs out, a stop-contact while waiting."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from ledger.db import transaction
from ledger.models import Conversation, HandoffTicket
from ledger.policy import load_policy
from ledger.settings import ROOT
from tests.e2e.accounts import Holder, new_holder, verified, view
from tests.e2e.conftest import Running

pytestmark = [pytest.mark.e2e]
MAX_WAIT = load_policy(ROOT / "policy.yml").handoff.max_wait_minutes


class Console:
    """An agent as its console acts: logged in, available or away, claiming and replying."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.username = f"duty-{uuid.uuid4().hex[:8]}"
        r = httpx.post(
            f"{running.gateway}/v1/agents",
            headers=running.admin,
            json={"username": self.username, "password": "long enough pw", "display_name": "小王"},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        login = httpx.post(
            f"{running.gateway}/v1/agent/login",
            data={"username": self.username, "password": "long enough pw"},
            timeout=30,
        )
        self.headers = {"Authorization": f"Bearer {login.json()['access_token']}"}

    def presence(self, status: str) -> dict[str, Any]:
        r = httpx.post(
            f"{self.running.gateway}/v1/agent/presence", json={"status": status}, headers=self.headers, timeout=30
        )
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    def queue(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.running.gateway}/v1/agent/queue", headers=self.headers, timeout=30).json()  # type: ignore[no-any-return]

    def item(self, conversation_id: str) -> dict[str, Any]:
        return next(i for i in self.queue() if i["conversation_id"] == conversation_id)

    def claim(self, conversation_id: str) -> httpx.Response:
        return httpx.post(
            f"{self.running.gateway}/v1/agent/conversations/{conversation_id}/claim", headers=self.headers, timeout=30
        )

    def reply(self, conversation_id: str, text: str) -> httpx.Response:
        return httpx.post(
            f"{self.running.gateway}/v1/agent/conversations/{conversation_id}/messages",
            json={"text": text},
            headers=self.headers,
            timeout=30,
        )


@pytest.fixture(autouse=True)
def queue_of_our_own(database_url: str) -> None:
    """Holders other tests left waiting for a person count against the agents' capacity (the clock is
    frozen, so their waits never run out): each test here starts with nobody else parked."""
    with transaction(database_url) as s:
        s.execute(
            update(HandoffTicket)
            .where(HandoffTicket.status == "waiting", HandoffTicket.parked.is_(True))
            .values(parked=False)
        )


def texts(answer: dict[str, Any]) -> str:
    return "\n".join(m["text"] for m in answer["messages"])


def holder_in_chat(running: Running, label: str) -> Holder:
    holder = new_holder(running, overdue_days=20)
    running.say(label, "你好")
    verified(running, label, holder)
    return holder


def test_with_nobody_on_duty_the_holder_hears_when_and_may_leave_a_callback_and_the_bot_keeps_serving(
    running: Running, conversation_id: str, nobody_present: None
) -> None:
    holder_in_chat(running, conversation_id)
    cid = running.cid(conversation_id)
    answer = running.say(conversation_id, "转人工")
    assert answer["mode"] == "bot"
    said = texts(answer)
    assert "人工客服暂时都不在线" in said and "继续为您服务" in said
    [offer] = [m for m in answer["messages"] if m.get("buttons")]
    slot = offer["buttons"][0]
    assert "回电" in slot["title"]
    # The bot keeps serving while the ticket waits for agents.
    debt = running.say(conversation_id, "我现在欠多少钱")
    assert debt["mode"] == "bot" and "元" in texts(debt)
    kept = running.say(conversation_id, slot["payload"])
    assert "已为您预约" in texts(kept)
    agent = Console(running)
    item = agent.item(cid)
    assert item["status"] == "waiting" and item["holder_waiting"] is False and item["callback_at"]


def test_an_agent_on_duty_claims_with_the_account_and_the_summary_and_the_waiting_holder_is_answered(
    running: Running, conversation_id: str, nobody_present: None
) -> None:
    holder = holder_in_chat(running, conversation_id)
    cid = running.cid(conversation_id)
    agent = Console(running)
    assert agent.presence("available")["on_duty"] is True
    running.say(conversation_id, "我失业了，这个月实在还不上")
    parked = running.say(conversation_id, "转人工")
    assert parked["mode"] == "human" and "预计" in texts(parked)
    waiting = running.say(conversation_id, "还要等多久")  # never silence while waiting
    assert waiting["mode"] == "human" and "预计" in texts(waiting)
    r = agent.claim(cid)
    assert r.status_code == 200, r.text
    claimed = r.json()
    assert claimed["account"]["account_id"] == holder.account_id
    assert "困难" in claimed["summary"]["asked"] and claimed["summary"]["situation"]
    assert agent.reply(cid, "您好，我是客服小王，已看到您失业的情况。").status_code == 200
    later = running.messages(conversation_id)
    assert any(m.get("sender") == "agent" for m in later["messages"])  # type: ignore[union-attr]
    quiet = running.say(conversation_id, "好的")  # the agent has it: the bot stays quiet
    assert quiet["mode"] == "human" and quiet["messages"] == []
    agent.presence("away")


def _parked_with_an_agent_on_duty(running: Running, conversation_id: str) -> tuple[str, Console]:
    """A verified holder who asked for a person while one agent was available (nobody claims)."""
    holder_in_chat(running, conversation_id)
    agent = Console(running)
    agent.presence("available")
    assert running.say(conversation_id, "转人工")["mode"] == "human"
    return running.cid(conversation_id), agent


def test_a_waiting_holder_withdraws_and_the_bot_resumes(
    running: Running, conversation_id: str, nobody_present: None, database_url: str
) -> None:
    cid, agent = _parked_with_an_agent_on_duty(running, conversation_id)
    back = running.say(conversation_id, "算了 不用人工了")
    assert back["mode"] == "bot" and "已取消转人工" in texts(back)
    debt = running.say(conversation_id, "我现在欠多少钱")
    assert debt["mode"] == "bot" and "元" in texts(debt)
    with transaction(database_url) as s:
        status = s.scalar(
            select(HandoffTicket.status)
            .join(Conversation, HandoffTicket.conversation_pk == Conversation.id)
            .where(Conversation.conversation_id == cid)
        )
    assert status == "withdrawn"
    agent.presence("away")


def test_an_unclaimed_wait_runs_out_the_holder_is_told_and_the_ticket_stays(
    running: Running, conversation_id: str, nobody_present: None, database_url: str
) -> None:
    cid, agent = _parked_with_an_agent_on_duty(running, conversation_id)
    with transaction(database_url) as s:  # the stack's clock stands still: the wait began long ago
        conv_pk = s.scalar(select(Conversation.id).where(Conversation.conversation_id == cid))
        created = s.scalar(select(HandoffTicket.created_at).where(HandoffTicket.conversation_pk == conv_pk))
        assert created is not None
        s.execute(
            update(HandoffTicket)
            .where(HandoffTicket.conversation_pk == conv_pk)
            .values(created_at=created - timedelta(minutes=MAX_WAIT + 1))
        )
    told = running.say(conversation_id, "还在吗")
    assert told["mode"] == "bot" and "久等" in texts(told)
    assert any(b["title"] == "预约回电" for m in told["messages"] for b in m.get("buttons") or [])
    assert agent.item(cid)["status"] == "waiting"  # still there for agents
    debt = running.say(conversation_id, "我现在欠多少钱")
    assert debt["mode"] == "bot" and "元" in texts(debt)
    agent.presence("away")


def test_a_stop_contact_while_waiting_is_acted_on_at_once(
    running: Running, conversation_id: str, nobody_present: None
) -> None:
    holder = holder_in_chat(running, conversation_id)
    agent = Console(running)
    agent.presence("available")
    assert running.say(conversation_id, "转人工")["mode"] == "human"
    answer = running.say(conversation_id, "以后别给我打电话了")
    assert answer["mode"] == "human"
    assert "不再给您打电话" in texts(answer) and "预计" in texts(answer)
    assert view(running, holder)["contact_preferences"]["calls"] == "opted_out"
    agent.presence("away")


def test_venting_and_a_complaint_keep_the_conversation_with_the_bot(running: Running, conversation_id: str) -> None:
    holder_in_chat(running, conversation_id)
    vent = running.say(conversation_id, "你们天天发短信烦不烦啊")
    said = texts(vent)
    assert vent["mode"] == "bot" and "抱歉" in said and "只发短信" in said and "投诉" in said
    assert "编号" not in said  # venting is not filed as a complaint
    complaint = running.say(conversation_id, "我要投诉你们的催收员")
    assert complaint["mode"] == "bot" and "编号" in texts(complaint)
    debt = running.say(conversation_id, "我现在欠多少钱")
    assert debt["mode"] == "bot" and "元" in texts(debt)


def test_a_dispute_before_verification_is_recorded_and_answered_without_parking(
    running: Running, conversation_id: str
) -> None:
    answer = running.say(conversation_id, "这几笔消费不是我刷的，卡被盗刷了")
    said = texts(answer)
    assert answer["mode"] == "bot" and "已记下" in said and "身份证" in said
    assert "元" not in said
