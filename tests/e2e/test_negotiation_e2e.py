"""Negotiation through the gateway with the real Rasa server, actions and ledger."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from ledger.money import fen_to_text, yuan_to_fen
from tests.e2e.accounts import new_holder, said, today, verified, view
from tests.e2e.conftest import Running

pytestmark = [pytest.mark.e2e, pytest.mark.calendar]


def fen_of(text: str) -> list[int]:
    return [yuan_to_fen(m.replace(",", "")) for m in re.findall(r"([\d,]+\.\d{2})元", text)]


def test_installment_agreed_in_chat_is_in_the_ledger(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=45)  # M2
    verified(running, conversation_id, holder)
    offer = running.texts(conversation_id, "我想分6期")
    assert "每期" in offer and "手续费" in offer and "年化" in offer and "需要为您办理吗" in offer
    assert view(running, holder)["plans"] == []  # nothing is written before the holder agrees
    done = running.texts(conversation_id, "/affirm")
    assert "已为您办理分6期" in done
    [plan] = view(running, holder)["plans"]
    assert (plan["type"], plan["status"], plan["periods"], plan["created_via"]) == ("installment", "active", 6, "chat")
    rows = [yuan_to_fen(r["amount"]) for r in plan["schedule"]]
    assert len(rows) == 6 and sum(rows) == yuan_to_fen(plan["principal"]) + yuan_to_fen(plan["total_fee"])
    assert fen_to_text(rows[0]) in offer and fen_to_text(yuan_to_fen(plan["total_fee"])) in offer
    assert f"{float(plan['apr']) * 100:.2f}%" in offer
    assert "已经有一个进行中的还款方案" in running.texts(conversation_id, "我想分12期") + running.texts(
        conversation_id, "/affirm"
    )


def test_out_of_policy_periods_get_an_honest_no_and_the_nearest(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)  # M1: 3, 6, 12
    verified(running, conversation_id, holder)
    answer = running.texts(conversation_id, "能分10期吗")
    assert "暂时没有10期的方案" in answer and "分12期" in answer


def test_installment_options_are_listed_with_their_cost(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)
    verified(running, conversation_id, holder)
    reply = running.say(conversation_id, "我想分期还款")
    text = reply["messages"][0]["text"]  # type: ignore[index]
    assert all(f"分{n}期" in text for n in (3, 6, 12)) and text.count("年化利率约") == 3
    assert [b["payload"] for b in reply["messages"][0]["buttons"]] == ["分3期", "分6期", "分12期"]  # type: ignore[index]


def test_promise_to_pay_is_confirmed_then_recorded(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)
    verified(running, conversation_id, holder)
    # Five days ahead, said as month and day: inside M1's 10-day window on any date, and across
    # a month's or a year's end it must still mean the coming day, never one in the past.
    day = today() + timedelta(days=5)
    summary = running.texts(conversation_id, f"我{day.month}月{day.day}日还500")
    assert said(day) in summary and "500.00元" in summary
    assert view(running, holder)["promises"] == []
    assert "已为您记录" in running.texts(conversation_id, "对的")
    [promise] = view(running, holder)["promises"]
    assert promise["amount"] == "500.00" and promise["due_date"] == day.isoformat() and promise["status"] == "open"


def test_promise_without_a_date_asks_for_one(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)
    verified(running, conversation_id, holder)
    assert "哪一天" in running.texts(conversation_id, "我会还的，还1000")
    tomorrow = said(today() + timedelta(days=1))
    assert tomorrow in running.texts(conversation_id, "明天")


def test_deferment_within_policy(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)  # M1: at most 15 days
    verified(running, conversation_id, holder)
    offer = running.texts(conversation_id, "能不能宽限几天")
    latest = today() + timedelta(days=15)
    assert said(latest) in offer
    running.texts(conversation_id, "/affirm")
    [plan] = view(running, holder)["plans"]
    assert plan["type"] == "deferment" and plan["schedule"][0]["due_date"] == latest.isoformat()


def test_questions_about_a_running_plan_are_answered_from_the_ledger(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)
    verified(running, conversation_id, holder)
    running.texts(conversation_id, "我想分3期")
    assert "已为您办理分3期" in running.texts(conversation_id, "/affirm")
    [plan] = view(running, holder)["plans"]
    status = running.texts(conversation_id, "我的分期还剩几期")
    assert "还剩3期" in status and fen_to_text(yuan_to_fen(plan["next_due_amount"])) in status
    consequence = running.texts(conversation_id, "这期没还上会怎样")
    assert "3天内补上不算逾期" in consequence and "分期就会终止" in consequence


@pytest.mark.usefixtures("nobody_present")
def test_hardship_leads_to_a_personalised_plan_for_approval(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=75)  # M3
    verified(running, conversation_id, holder)
    offer = running.texts(conversation_id, "我失业了，实在还不上")
    assert "理解" in offer and "个性化分期" in offer
    last = running.say(conversation_id, "/affirm")
    assert last["mode"] == "bot"  # nobody on duty: submitted, and the bot serves on until a person reviews it
    [plan] = view(running, holder)["plans"]
    assert plan["type"] == "personalized" and plan["status"] == "pending_approval"


def test_a_stated_monthly_amount_sizes_the_personalised_plan(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=75)  # M3
    verified(running, conversation_id, holder)
    assert "每个月大概能还多少" in running.texts(conversation_id, "我失业了，实在还不上")
    offer = running.texts(conversation_id, "每个月能还2000")
    assert "个性化分期" in offer and "年化利率约" in offer and "费用共" in offer
    running.say(conversation_id, "/affirm")
    [plan] = view(running, holder)["plans"]
    assert plan["type"] == "personalized" and plan["status"] == "pending_approval"
    assert all(yuan_to_fen(r["amount"]) <= 200_000 for r in plan["schedule"]) and plan["apr"] != "0.0000"


def test_dispute_holds_the_account_and_hands_off(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)
    verified(running, conversation_id, holder)
    reply = running.say(conversation_id, "这几笔消费不是我刷的，卡被盗刷了")
    assert "暂停还款提醒" in reply["messages"][0]["text"]  # type: ignore[index]
    # A person takes it: parked when someone is available, else told when (issue 29), never silence.
    told = "".join(m["text"] for m in reply["messages"])  # type: ignore[union-attr]
    assert ("预计" in told) if reply["mode"] == "human" else ("回复您" in told or "不在线" in told)
    account = view(running, holder)
    assert "dispute" in account["flags"] and account["disputes"]


def test_complaint_gets_a_reference_number(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)
    verified(running, conversation_id, holder)
    answer = running.texts(conversation_id, "我要投诉你们的催收员，天天打电话")
    [complaint] = view(running, holder)["complaints"]
    assert complaint["reference"] in answer and "12378" in answer


def test_stop_contact_is_honoured_at_once(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)
    verified(running, conversation_id, holder)
    assert "不再给您发短信" in running.texts(conversation_id, "TD")
    prefs = view(running, holder)["contact_preferences"]
    assert prefs["sms"] == "opted_out" and prefs["calls"] == "allowed"
    assert "不再给您打电话" in running.texts(conversation_id, "以后不要给我打电话")
    assert view(running, holder)["contact_preferences"]["calls"] == "opted_out"


def test_stop_contact_before_verification_changes_nothing(running: Running, conversation_id: str) -> None:
    """Anyone can type a phone number: until verified, a request is a ticket for a person."""
    holder = new_holder(running, overdue_days=20)
    running.say(conversation_id, holder.phone)
    answer = running.texts(conversation_id, "退订")
    assert "专人会尽快核实" in answer and "催收" not in answer
    assert view(running, holder)["contact_preferences"]["sms"] == "allowed"


def test_already_paid_is_checked_in_the_ledger(running: Running, conversation_id: str) -> None:
    import httpx

    holder = new_holder(running, overdue_days=20)
    r = httpx.post(
        f"{running.gateway}/v1/accounts/{holder.account_id}/payments",
        headers=running.admin,
        json={"amount": "300.00", "paid_at": f"{today().isoformat()}T09:00:00+08:00", "reference": "p-1"},
    )
    assert r.status_code == 201
    verified(running, conversation_id, holder)
    answer = running.texts(conversation_id, "我已经还了啊")
    assert "300.00元" in answer and said(today()) in answer


def test_abuse_stays_calm_and_a_person_is_offered_not_forced(running: Running, conversation_id: str) -> None:
    """Issue 29: every insult gets calm words and a concrete offer; a person only if wanted."""
    for text in ("滚", "滚", "傻逼"):
        reply = running.say(conversation_id, text)
        assert reply["mode"] == "bot" and "理解" in reply["messages"][0]["text"]  # type: ignore[index]
        offers = [b["payload"] for m in reply["messages"] for b in m.get("buttons") or []]  # type: ignore[union-attr]
        assert "/request_human" in offers


def test_unclear_input_gets_a_clarifying_question(running: Running, conversation_id: str) -> None:
    reply = running.say(conversation_id, "滴滴答答乌拉拉")
    [message] = reply["messages"]  # type: ignore[misc]
    assert "没太明白" in message["text"] and len(message["buttons"]) >= 3
