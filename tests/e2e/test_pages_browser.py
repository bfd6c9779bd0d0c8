"""The pages in a real browser (Debian's Chromium driven by Playwright), against the real stack."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from ledger.money import fen_to_text, yuan_to_fen
from tests.e2e.accounts import new_holder, view
from tests.e2e.conftest import Running

pytestmark = [pytest.mark.e2e, pytest.mark.browser]
CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian chromium is missing: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield b
        b.close()


def phone_page(browser: Browser) -> Page:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    return context.new_page()


def say(page: Page, text: str) -> None:
    page.fill("#text", text)
    page.click("#send")


def last_bot_text(page: Page) -> str:
    return page.locator(".msg.bot").last.inner_text()


def test_holder_chats_on_the_page_and_sees_the_ledgers_amount(running: Running, browser: Browser) -> None:
    holder = new_holder(running, overdue_days=45)
    page = phone_page(browser)
    page.goto(f"{running.gateway}/chat")
    expect(page.locator(".msg.bot").first).to_contain_text("示例银行信用卡中心", timeout=20_000)
    say(page, holder.phone)
    expect(page.locator(".msg.bot")).to_have_count(2, timeout=20_000)
    say(page, f"身份证后四位{holder.id_last4}，卡号后四位{holder.card_last4}")
    expect(page.locator(".msg.bot").last).to_contain_text("验证通过", timeout=20_000)
    page.locator(".msg.bot").last.get_by_role("button", name="查询欠款").click()  # a quick-reply button
    expect(page.locator(".msg.bot")).to_have_count(4, timeout=20_000)
    amount_due = view(running, holder)["amount_due"]
    expect(page.locator(".msg.bot").last).to_contain_text(fen_to_text(yuan_to_fen(amount_due)))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "chat.png"), full_page=True)
    page.context.close()


def test_agent_takes_over_and_hands_back(running: Running, browser: Browser) -> None:
    holder = new_holder(running, overdue_days=45)
    username, password = f"agent-{uuid.uuid4().hex[:6]}", "a long enough password"
    r = httpx.post(
        f"{running.gateway}/v1/agents",
        headers=running.admin,
        json={"username": username, "password": password, "display_name": "小李"},
    )
    assert r.status_code == 201

    chat = phone_page(browser)
    chat.goto(f"{running.gateway}/chat")
    expect(chat.locator(".msg.bot").first).to_be_visible(timeout=20_000)
    say(chat, holder.credentials())
    expect(chat.locator(".msg.bot").last).to_contain_text("验证通过", timeout=20_000)
    say(chat, "我要转人工")  # nobody is on duty yet: told so (issue 29), the ticket waits for agents
    expect(chat.locator(".msg.bot").filter(has_text="人工客服").last).to_be_visible(timeout=20_000)
    conversation_id = chat.evaluate("JSON.parse(sessionStorage.getItem('repay.session')).conversation_id")

    agent = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    agent.goto(f"{running.gateway}/agent")
    agent.fill("#username", username)
    agent.fill("#password", password)
    agent.click("#login button[type=submit]")
    item = agent.locator(f".item[data-id='{conversation_id}']")
    expect(item).to_contain_text("主动要求", timeout=20_000)
    item.click()
    expect(agent.locator("#transcript")).to_contain_text("接入后可查看")  # an agent reads what it has claimed
    agent.click("#claim")
    expect(item).to_contain_text("已接入", timeout=10_000)
    expect(agent.locator("#transcript")).to_contain_text("我要转人工")
    expect(agent.locator("#side")).to_contain_text(view(running, holder)["amount_due"])  # the account at a glance
    agent.fill("#reply", "您好，我是人工客服小李，请问有什么可以帮您？")
    agent.click("#send")
    expect(chat.locator(".msg.agent").last).to_contain_text("人工客服小李", timeout=15_000)  # pushed to the holder
    say(chat, "我想了解一下分期")
    expect(agent.locator("#transcript")).to_contain_text("我想了解一下分期", timeout=15_000)
    SHOTS.mkdir(parents=True, exist_ok=True)
    agent.screenshot(path=str(SHOTS / "agent.png"))
    agent.click("#release")
    expect(agent.locator(f".item[data-id='{conversation_id}']")).to_have_count(0, timeout=10_000)
    bots_before = chat.locator(".msg.bot").count()
    say(chat, "我现在欠多少钱")
    expect(chat.locator(".msg.bot")).to_have_count(bots_before + 1, timeout=20_000)
    assert "逾期" in last_bot_text(chat)  # the bot answers again
    chat.context.close()
    agent.context.close()


def test_sms_link_opens_the_chat_page_in_context(running: Running, browser: Browser, database_url: str) -> None:
    from sqlalchemy import select

    from api.channels import links
    from ledger import conduct
    from ledger.clock import process_clock
    from ledger.db import transaction
    from ledger.models import ContactAttempt

    holder = new_holder(running, overdue_days=41)
    r = httpx.post(
        f"{running.gateway}/v1/campaigns",
        headers=running.admin,
        timeout=60,
        json={"name": "link", "segment": {"min_overdue_days": 41, "max_overdue_days": 41}, "template": "reminder"},
    )
    assert r.status_code == 201
    with transaction(database_url) as s:
        pk = conduct.account_pk(s, holder.account_id)
        attempt_id = s.scalar(select(ContactAttempt.id).where(ContactAttempt.account_pk == pk))
    assert attempt_id is not None
    token = links.issue(attempt_id, running.secrets["LINK_SIGNING_KEY"], process_clock().now())
    page = phone_page(browser)
    page.goto(f"{running.gateway}/chat?t={token}")
    expect(page.locator(".msg.bot").first).to_contain_text("感谢您打开我们的短信链接", timeout=20_000)
    assert "t=" not in page.url  # the token leaves the address bar
    say(page, f"身份证后四位{holder.id_last4}，卡号后四位{holder.card_last4}")
    expect(page.locator(".msg.bot").last).to_contain_text("验证通过", timeout=20_000)
    page.context.close()


def test_kpi_dashboard_draws_the_figures(running: Running, browser: Browser) -> None:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{running.gateway}/kpis")
    page.fill("#token", running.admin["Authorization"].removeprefix("Bearer "))
    page.click("#load")
    expect(page.locator(".tile").first).to_contain_text("触达率", timeout=20_000)
    expect(page.locator(".card h2", has_text="迁徙率")).to_be_visible()
    figures = httpx.get(f"{running.gateway}/v1/kpis", headers=running.admin, timeout=60).json()
    assert page.locator(".tile b").nth(11).inner_text() == str(figures["accounts_targeted"])
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "kpis.png"), full_page=True)
    page.context.close()


def test_the_holder_ends_the_chat_and_its_token_opens_nothing(running: Running, browser: Browser) -> None:
    """Issue 31, finding 8: on a shared phone or computer, 结束对话 ends the session on the server."""
    page = phone_page(browser)
    page.goto(f"{running.gateway}/chat")
    expect(page.locator(".msg.bot").first).to_contain_text("示例银行信用卡中心", timeout=20_000)
    session = page.evaluate("JSON.parse(sessionStorage.getItem('repay.session'))")
    page.once("dialog", lambda dialog: dialog.accept())  # "确定结束本次对话吗？"
    page.click("#end")
    expect(page.locator(".status").last).to_contain_text("对话已结束", timeout=10_000)
    expect(page.locator("#send")).to_be_disabled()
    assert page.evaluate("sessionStorage.getItem('repay.session')") is None
    r = httpx.get(
        f"{running.gateway}/v1/chat/{session['conversation_id']}/messages",
        headers={"Authorization": f"Bearer {session['session_token']}"},
    )
    assert r.status_code == 401
    page.context.close()
