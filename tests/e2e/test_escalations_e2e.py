"""Escalations that need the whole stack: a reported death, repeated confusion, an SMS reply to a campaign."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select, update

from ledger import conduct
from ledger.clock import process_clock
from ledger.db import transaction
from ledger.models import Agent, ContactAttempt, NumberSuppression
from tests.e2e.accounts import new_holder, outbox, sms, view
from tests.e2e.conftest import Running

pytestmark = [pytest.mark.e2e, pytest.mark.calendar]


def queue(running: Running) -> list[dict]:  # type: ignore[type-arg]
    user = f"q-{uuid.uuid4().hex[:6]}"
    httpx.post(
        f"{running.gateway}/v1/agents",
        headers=running.admin,
        json={"username": user, "password": "long enough pw", "display_name": "q"},
    )
    token = httpx.post(f"{running.gateway}/v1/agent/login", data={"username": user, "password": "long enough pw"})
    return httpx.get(
        f"{running.gateway}/v1/agent/queue",  # type: ignore[no-any-return]
        headers={"Authorization": f"Bearer {token.json()['access_token']}"},
    ).json()


def agent_headers(running: Running) -> dict[str, str]:
    user = f"q-{uuid.uuid4().hex[:6]}"
    httpx.post(
        f"{running.gateway}/v1/agents",
        headers=running.admin,
        json={"username": user, "password": "long enough pw", "display_name": "q"},
    )
    token = httpx.post(f"{running.gateway}/v1/agent/login", data={"username": user, "password": "long enough pw"})
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


def test_a_reported_death_goes_to_a_person_and_changes_nothing_unverified(running: Running) -> None:
    """Whoever holds the phone is not verified: a person checks the report before any hold. The one
    reporting it hears the next steps and documents and is not parked waiting (issue 29)."""
    holder = new_holder(running, overdue_days=50)
    sms(running, holder.phone, "这个号码的机主已经去世了")
    replies = outbox(running, holder.phone)
    said = "".join(replies)
    assert "节哀" in said and "死亡证明" in said and "元" not in said and "账户" not in said
    assert "deceased" not in view(running, holder)["flags"]
    requests = httpx.get(f"{running.gateway}/v1/agent/contact-requests", headers=agent_headers(running)).json()
    assert any(r["kind"] == "deceased" and r["conversation_id"] == f"sms-{holder.phone}" for r in requests)
    assert all(i["conversation_id"] != f"sms-{holder.phone}" for i in queue(running))


def test_a_wrong_number_said_from_the_number_silences_it_for_that_account(running: Running, database_url: str) -> None:
    """打错了 from the number itself: the NLU's cue, not the action's own word list, decides it."""
    holder = new_holder(running, overdue_days=35)
    sms(running, holder.phone, "你们打错了，我不认识这个人")
    [reply] = outbox(running, holder.phone)
    assert "元" not in reply and "逾期" not in reply
    with transaction(database_url) as s:
        rows = s.execute(
            select(NumberSuppression.channel, NumberSuppression.reason, NumberSuppression.account_pk)
            .where(NumberSuppression.phone == holder.phone)
            .order_by(NumberSuppression.id)
        ).all()
        assert [tuple(r) for r in rows] == [("all", "wrong_number", conduct.account_pk(s, holder.account_id))]


def test_repeated_confusion_asks_for_a_person_and_nobody_on_duty_is_no_silence(
    running: Running, conversation_id: str, database_url: str
) -> None:
    with transaction(database_url) as s:  # every agent away: nobody on duty (issue 29)
        s.execute(update(Agent).values(presence="away"))
    replies = [running.say(conversation_id, text) for text in ("滴滴答答乌拉拉", "啊啊啊啊", "哦哦哦")]
    assert [r["mode"] for r in replies] == ["bot", "bot", "bot"]
    said = "\n".join(m["text"] for m in replies[-1]["messages"])  # type: ignore[attr-defined]
    assert "人工客服" in said and "继续为您服务" in said
    assert running.say(conversation_id, "我现在欠多少钱")["messages"]  # the bot keeps serving


def test_an_sms_reply_to_a_campaign_starts_in_context(running: Running, database_url: str) -> None:
    holder = new_holder(running, overdue_days=42)
    r = httpx.post(
        f"{running.gateway}/v1/campaigns",
        headers=running.admin,
        timeout=60,
        json={"name": "sms", "segment": {"min_overdue_days": 42, "max_overdue_days": 42}, "template": "reminder"},
    )
    assert r.status_code == 201
    with transaction(database_url) as s:  # as if the sender delivered it (its own tests cover sending)
        pk = conduct.account_pk(s, holder.account_id)
        s.execute(
            update(ContactAttempt)
            .where(ContactAttempt.account_pk == pk)
            .values(status="sent", sent_at=process_clock().now())
        )
    sms(running, holder.phone, "你好，收到短信了")
    replies = outbox(running, holder.phone)
    assert any("示例银行信用卡中心" in body and "身份证" in body for body in replies)
    assert all("元" not in body for body in replies)


def test_a_third_party_after_verification_learns_nothing_more(running: Running, conversation_id: str) -> None:
    from tests.e2e.accounts import verified

    holder = new_holder(running, overdue_days=45)
    verified(running, conversation_id, holder)
    assert "元" in running.texts(conversation_id, "我欠多少钱")
    answer = running.texts(conversation_id, "我是他老婆，他到底欠了多少")
    assert "元" not in answer and "逾期" not in answer and "本人" in answer
    again = running.texts(conversation_id, "那他欠多少钱")
    assert "元" not in again and "核实身份" in again
