"""Conversations that finish what the holder came for (issue 28), through the gateway with the real Rasa
server, action server and ledger: the bot keeps what it asked, sizes offers to what the holder can pay,
records two-part arrangements, and says an agreement is recorded only when the account view shows it."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from ledger.fees import add_months
from ledger.money import fen_to_text, yuan_to_fen
from tests.e2e.accounts import new_holder, said, today, verified, view
from tests.e2e.conftest import Running

pytestmark = [pytest.mark.e2e, pytest.mark.calendar]


def fen_of(text: str) -> list[int]:
    return [yuan_to_fen(m.replace(",", "")) for m in re.findall(r"([\d,]+\.\d{2})元", text)]


def ahead(days: int) -> date:
    return today() + timedelta(days=days)


def test_a_bare_date_after_a_deferment_offer_moves_it_and_confirm_records_it(
    running: Running, conversation_id: str
) -> None:
    holder = new_holder(running, overdue_days=45)  # M2: deferment up to 30 days, promises up to 15
    verified(running, conversation_id, holder)
    offer = running.texts(conversation_id, "能延期还款吗")
    assert f"延期到{said(ahead(30))}" in offer
    moved = running.texts(conversation_id, said(ahead(20)))  # a bare date: the deferment's, not a promise
    assert f"延期到{said(ahead(20))}" in moved and "最晚可以约定" not in moved
    assert view(running, holder)["plans"] == []  # nothing written before the holder agrees
    done = running.texts(conversation_id, "确认")
    [plan] = view(running, holder)["plans"]
    assert (plan["type"], plan["status"], plan["schedule"][0]["due_date"]) == (
        "deferment",
        "active",
        ahead(20).isoformat(),
    )
    assert "已为您办理延期" in done and said(ahead(20)) in done
    assert fen_to_text(yuan_to_fen(plan["schedule"][0]["amount"])) in done  # read back from the ledger row


def test_a_deferment_past_the_limit_gets_the_nearest_date_and_is_asked_again(
    running: Running, conversation_id: str
) -> None:
    holder = new_holder(running, overdue_days=45)
    verified(running, conversation_id, holder)
    answer = running.texts(conversation_id, f"能延期到{said(ahead(45))}吗")
    assert f"最晚只能到{said(ahead(30))}" in answer and "需要为您办理吗" in answer
    running.texts(conversation_id, "要得")
    [plan] = view(running, holder)["plans"]
    assert plan["schedule"][0]["due_date"] == ahead(30).isoformat()


def test_confirm_with_nothing_offered_records_nothing(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=45)
    verified(running, conversation_id, holder)
    running.texts(conversation_id, "我想查下我的信用卡欠款")
    answer = running.texts(conversation_id, "确认")
    assert "确认哪一项" in answer and "已为您" not in answer
    account = view(running, holder)
    assert account["plans"] == [] and account["promises"] == []


def test_what_the_holder_can_pay_a_month_sizes_the_plan_and_is_not_a_promise(
    running: Running, conversation_id: str
) -> None:
    holder = new_holder(running, overdue_days=45)  # M2: 12,000 yuan
    verified(running, conversation_id, holder)
    offer = running.texts(conversation_id, "我一个月能还1200左右")
    assert "按每月1,200.00元" in offer and "年化利率约" in offer and "哪一天还款" not in offer
    assert view(running, holder)["promises"] == []  # never read as a promise to pay
    running.texts(conversation_id, "确认")
    [plan] = view(running, holder)["plans"]
    assert all(yuan_to_fen(r["amount"]) <= 120_000 for r in plan["schedule"]) and plan["apr"] != "0.0000"
    assert f"{plan['periods']}期" in offer


def test_too_little_a_month_is_said_honestly_with_a_person_to_ask(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)  # M1: standard instalments only, at most 12 periods
    verified(running, conversation_id, holder)
    reply = running.say(conversation_id, "每个月最多还800")
    text = "\n".join(m["text"] for m in reply["messages"])  # type: ignore[union-attr]
    assert "800.00元" in text and "人工" in text and "最长12期" in text
    assert view(running, holder)["promises"] == [] and view(running, holder)["plans"] == []


@pytest.mark.usefixtures("nobody_present")
def test_sixty_periods_for_a_holder_out_of_work_on_an_m4_account(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=100)  # M4: standard up to 36, personalised up to 60
    verified(running, conversation_id, holder)
    offer = running.texts(conversation_id, "我失业了，能不能分60期")
    assert "理解" in offer and "分60期" in offer and "个性化分期" in offer and "年化利率约" in offer
    last = running.say(conversation_id, "要得")
    [plan] = view(running, holder)["plans"]
    assert (plan["type"], plan["status"], plan["periods"]) == ("personalized", "pending_approval", 60)
    said = "\n".join(m["text"] for m in last["messages"])  # type: ignore[attr-defined]
    assert last["mode"] == "bot" and "需要工作人员审核" in said and "继续为您服务" in said  # nobody on duty


def test_pay_part_now_and_the_rest_on_a_date_is_two_promises_in_the_account_view(
    running: Running, conversation_id: str
) -> None:
    holder = new_holder(running, overdue_days=45)
    verified(running, conversation_id, holder)
    summary = running.texts(conversation_id, f"先还500，剩下的{said(ahead(5))}还清")
    assert "500.00元" in summary and said(ahead(5)) in summary
    assert view(running, holder)["promises"] == []
    done = running.texts(conversation_id, "确认")
    promises = sorted(view(running, holder)["promises"], key=lambda p: p["due_date"])
    assert [(p["amount"], p["due_date"], p["status"]) for p in promises] == [
        ("500.00", today().isoformat(), "open"),
        (promises[1]["amount"], ahead(5).isoformat(), "open"),
    ]
    assert fen_to_text(yuan_to_fen(promises[1]["amount"])) in done and "500.00元" in done  # read back


def test_the_rest_on_friday_after_a_first_payment_was_proposed(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=45)
    verified(running, conversation_id, holder)
    assert "500.00元" in running.texts(conversation_id, "我今天先还500")
    parts = running.texts(conversation_id, f"那剩下的我{said(ahead(4))}还 行吗")
    assert said(ahead(4)) in parts and "500.00元" in parts
    running.texts(conversation_id, "确认")
    assert sorted(p["due_date"] for p in view(running, holder)["promises"]) == [
        today().isoformat(),
        ahead(4).isoformat(),
    ]


def test_a_plan_that_starts_next_month(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=45)
    verified(running, conversation_id, holder)
    offer = running.texts(conversation_id, "下个月开始分12期")
    first = add_months(today(), 1)
    assert "分12期" in offer and f"首期还款日{said(first)}" in offer
    running.texts(conversation_id, "确认")
    [plan] = view(running, holder)["plans"]
    assert plan["periods"] == 12 and plan["schedule"][0]["due_date"] == first.isoformat()


def test_intents_that_had_stopped_routing(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=45)
    verified(running, conversation_id, holder)
    assert "延期" in running.texts(conversation_id, "这个月能先不还吗")
    assert "不着急" in running.texts(conversation_id, "拒绝")  # the offer declined, no pressure
    assert "减免" in running.texts(conversation_id, "违约金太多了能少点吗")  # a waiver request (M2: none to grant)
    amount_due = view(running, holder)["amount_due"]
    assert fen_to_text(yuan_to_fen(amount_due)) in running.texts(conversation_id, "我想查下我的信用卡欠款")


def test_a_bare_number_after_the_instalment_list_picks_the_periods(running: Running, conversation_id: str) -> None:
    holder = new_holder(running, overdue_days=20)  # M1: 3, 6, 12
    verified(running, conversation_id, holder)
    assert "分12期" in running.texts(conversation_id, "我想分期还款")
    assert "确认哪一项" in running.texts(conversation_id, "确认")  # a list is no terms to confirm
    assert view(running, holder)["plans"] == []
    running.texts(conversation_id, "我想分期还款")
    offer = running.texts(conversation_id, "12")
    assert "分12期" in offer and "需要为您办理吗" in offer and "验证" not in offer
    running.texts(conversation_id, "确认")
    [plan] = view(running, holder)["plans"]
    assert (plan["type"], plan["periods"]) == ("installment", 12)
