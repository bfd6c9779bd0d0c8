"""Process questions through the gateway with the real Rasa server: answered in place, before or
during a negotiation, and a pending offer is asked again rather than listed from scratch."""

from __future__ import annotations

import pytest

from tests.e2e.accounts import new_holder, verified, view
from tests.e2e.conftest import Running

pytestmark = pytest.mark.e2e


def test_process_questions_are_answered_before_verification(running: Running, conversation_id: str) -> None:
    jail = running.texts(conversation_id, "信用卡欠了两万还不上会不会坐牢啊")
    assert "不会坐牢" in jail and "恶意透支" in jail
    report = running.texts(conversation_id, "协商了分期以后征信上会怎么显示")
    assert "5年" in report and "逾期结束" in report and report != jail
    agents = running.texts(conversation_id, "网上有代理停息挂账的靠谱吗")
    assert "免费" in agents and "手机号码" not in agents


def test_a_rate_question_mid_offer_gets_that_offers_rate_then_yes_makes_the_plan(
    running: Running, conversation_id: str
) -> None:
    holder = new_holder(running, overdue_days=45)  # M2
    verified(running, conversation_id, holder)
    offer = running.texts(conversation_id, "我想分12期")
    assert "分12期" in offer and "年化利率约" in offer
    apr = offer.split("年化利率约")[1].split("，")[0]
    again = running.texts(conversation_id, "这个分期的年化利率是多少")
    assert "分12期" in again and apr in again and "需要为您办理吗" in again
    assert "分3期" not in again  # the offer is explained, not all offers listed again
    assert "已为您办理分12期" in running.texts(conversation_id, "好的")
    [plan] = view(running, holder)["plans"]
    assert plan["periods"] == 12
