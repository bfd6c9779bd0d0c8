"""Issue 30 as people would say it, through the whole stack (real Rasa, action server, gateway):
a wife answering our SMS on her husband's phone, a mother on web chat, a mixed contact request."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger.db import transaction
from ledger.models import Complaint, Conversation
from ledger.policy import load_policy
from tests.e2e.accounts import new_holder, outbox, sms, verified, view
from tests.e2e.conftest import Running

pytestmark = [pytest.mark.e2e, pytest.mark.calendar]


def test_the_wife_on_her_husbands_phone_cannot_verify_as_him(running: Running, database_url: str) -> None:
    holder = new_holder(running, overdue_days=40)
    sms(running, holder.phone, "这是我老公的手机")
    sms(running, holder.phone, "我是他老婆")
    sms(running, holder.phone, f"身份证后四位{holder.id_last4}，卡号后四位{holder.card_last4}")
    replies = "\n".join(outbox(running, holder.phone))
    assert "验证通过" not in replies
    assert "元" not in replies and "逾期" not in replies  # nothing about the debt
    assert "卡号" in replies  # how family may pay without learning the debt
    with transaction(database_url) as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == f"sms-{holder.phone}"))
        assert conv is not None and conv.verified_at is None and conv.speaker == "third_party"


def test_the_mother_on_web_chat_learns_nothing_and_files_nothing(
    running: Running, conversation_id: str, database_url: str
) -> None:
    holder = new_holder(running, overdue_days=50)
    first = running.texts(conversation_id, "我是刘正他妈")
    assert "本人" in first and "卡号" in first
    answer = running.texts(conversation_id, holder.credentials())
    assert "验证通过" not in answer and "元" not in answer
    asked = running.texts(conversation_id, "他欠了多少钱")
    assert "元" not in asked
    later = running.texts(conversation_id, "好的 我让他回来给你们打电话")
    assert "投诉" not in later
    assert view(running, holder)["complaints"] == []
    with transaction(database_url) as s:
        filed = s.scalar(
            select(func.count()).select_from(Complaint).where(Complaint.conversation_id == running.cid(conversation_id))
        )
        assert filed == 0


def test_a_mixed_contact_request_is_recorded_as_said(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=30)
    verified(running, conversation_id, holder)
    answer = running.texts(conversation_id, "短信可以发 电话白天别打")
    end = f"{load_policy(Path(__file__).parents[2] / 'policy.yml').contact.window_end:%H:%M}"
    assert "短信照常" in answer and f"18:00至{end}" in answer  # read back, as recorded
    prefs = view(running, holder)["contact_preferences"]
    assert prefs["sms"] == "allowed"
    assert prefs["calls"] == "restricted"
    assert prefs["calls_windows"] == [{"days": "all", "from": "18:00", "to": end}]
