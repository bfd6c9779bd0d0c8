"""Conversations through the gateway with the real Rasa server and action server."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from ledger.db import transaction
from ledger.models import Conversation, Message
from ledger.money import fen_to_text, yuan_to_fen
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e

DEMO_M2 = ("13800000002", "2345", "6002")


def test_health_reports_every_part(running: Running) -> None:
    body = httpx.get(f"{running.gateway}/healthz").json()
    assert body == {"status": "ok", "checks": {"db": "ok", "rasa": "ok", "actions": "ok"}}


def test_hello_reaches_rasa_and_an_action_and_is_recorded(
    running: Running, conversation_id: str, database_url: str
) -> None:
    reply = running.say(conversation_id, "你好")
    assert reply["mode"] == "bot"
    [message] = reply["messages"]  # type: ignore[misc]
    assert "示例银行信用卡中心" in message["text"] and "手机号码" in message["text"]  # the action, from policy.yml
    with transaction(database_url) as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == running.cid(conversation_id)))
        assert conv is not None
        rows = s.scalars(select(Message).where(Message.conversation_pk == conv.id).order_by(Message.seq)).all()
        assert [(m.seq, m.sender) for m in rows] == [(1, "user"), (2, "bot")]
        assert rows[0].intent == "greet" and rows[0].confidence is not None and rows[0].confidence > 0.2


def test_verified_holder_is_quoted_the_ledgers_amount(running: Running, conversation_id: str) -> None:
    phone, id4, card4 = DEMO_M2
    running.say(conversation_id, "你好")
    assert "身份证" in running.texts(conversation_id, phone)
    assert "验证通过" in running.texts(conversation_id, f"身份证后四位{id4}，卡号后四位{card4}")
    answer = running.texts(conversation_id, "我现在欠多少钱")
    view = httpx.get(f"{running.gateway}/v1/accounts/demo-m2", headers=running.admin).json()
    assert fen_to_text(yuan_to_fen(view["amount_due"])) in answer
    assert fen_to_text(yuan_to_fen(view["breakdown"]["interest"])) in answer
    assert f"逾期{view['overdue_days']}天" in answer


def test_everything_in_one_message(running: Running, conversation_id: str) -> None:
    phone, id4, card4 = DEMO_M2
    assert "验证通过" in running.texts(conversation_id, f"手机{phone}，身份证后四位{id4}，卡号尾号{card4}")


def test_nothing_is_disclosed_before_verification(running: Running, conversation_id: str) -> None:
    answer = running.texts(conversation_id, "我欠你们多少钱")
    assert "元" not in answer and "逾期" not in answer and "手机号码" in answer
    running.say(conversation_id, DEMO_M2[0])  # the phone alone is not enough
    answer = running.texts(conversation_id, "告诉我欠款金额")
    assert "元" not in answer and "逾期" not in answer


def test_third_party_learns_nothing(running: Running, conversation_id: str) -> None:
    answer = running.texts(conversation_id, "我不是本人，这是我老公的手机")
    assert "元" not in answer and "逾期" not in answer and "欠" not in answer
    assert "400-000-0000" in answer


@pytest.mark.usefixtures("nobody_present")
def test_three_wrong_answers_lock_and_a_person_is_asked_to_look(running: Running, conversation_id: str) -> None:
    running.say(conversation_id, DEMO_M2[0])
    for _ in range(2):
        assert "再试" in running.texts(conversation_id, "身份证后四位0000，卡号后四位0000")
    last = running.say(conversation_id, "身份证后四位0000，卡号后四位0000")
    said = "\n".join(m["text"] for m in last["messages"])  # type: ignore[attr-defined]
    # Nobody on duty: the holder is told a person will look and when, and is not left waiting in silence.
    assert last["mode"] == "bot" and "人工客服核实" in said and ("服务时间" in said or "不在线" in said)
    # Locked: the right digits now change nothing and disclose nothing; the holder hears where else to go.
    after = running.texts(conversation_id, f"身份证后四位{DEMO_M2[1]}，卡号后四位{DEMO_M2[2]}")
    assert "暂时不能" in after and "验证通过" not in after and "元" not in after


def test_messages_racing_in_one_conversation_are_processed_in_order(
    running: Running, conversation_id: str, database_url: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda _: running.say(conversation_id, "你好"), range(6)))
    assert all(r["messages"] for r in replies)
    with transaction(database_url) as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == running.cid(conversation_id)))
        assert conv is not None
        senders = [
            m.sender for m in s.scalars(select(Message).where(Message.conversation_pk == conv.id).order_by(Message.seq))
        ]
    assert senders == ["user", "bot"] * 6  # each message answered before the next is taken
