"""WeChat through the real gateway, Rasa and action server: signed, encrypted pushes in, the outbox read."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import xmltodict  # type: ignore[import-untyped]
from pydantic import SecretStr
from sqlalchemy import insert, select, update

from api.channels import links
from api.channels.wechat.provider import encrypt_push, push_xml, signature
from ledger import conduct, wechat
from ledger.clock import process_clock
from ledger.db import transaction
from ledger.models import ContactAttempt, Conversation, Message, WeChatUser
from ledger.money import fen_to_text, yuan_to_fen
from settings import Settings
from tests.e2e.accounts import Holder, new_holder, view
from tests.e2e.conftest import Running

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.e2e
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)  # idle past any VERIFY_IDLE_MINUTES, on any date


class Follower:
    """One WeChat user of the bank's Official Account, pushing in safe mode as WeChat does."""

    def __init__(self, running: Running) -> None:
        self.running = running
        self.openid = f"o{uuid.uuid4().hex[:27]}"
        self.settings = Settings(
            wechat_token=SecretStr(running.secrets["WECHAT_TOKEN"]),
            wechat_encoding_aes_key=SecretStr(running.secrets["WECHAT_ENCODING_AES_KEY"]),
            wechat_app_id=os.environ.get("WECHAT_APP_ID", ""),
        )
        self.created = 1_700_000_000 + uuid.uuid4().int % 10**6

    def push(self, fields: dict[str, str | int]) -> httpx.Response:
        self.created += 1
        xml = push_xml({"ToUserName": "gh_bank", "FromUserName": self.openid, "CreateTime": self.created, **fields})
        # The signed timestamp is now (the stack's clock): WeChat's pushes older than 5 minutes are refused.
        timestamp, nonce = str(int(process_clock().now().timestamp())), uuid.uuid4().hex[:10]
        envelope = xmltodict.parse(encrypt_push(self.settings, xml, nonce, timestamp))["xml"]
        params = {
            "timestamp": timestamp,
            "nonce": nonce,
            "signature": signature(self.settings.wechat_token.get_secret_value(), timestamp, nonce),
            "openid": self.openid,
            "encrypt_type": "aes",
            "msg_signature": envelope["MsgSignature"],
        }
        body = push_xml({"ToUserName": "gh_bank", "Encrypt": envelope["Encrypt"]})
        r = httpx.post(f"{self.running.gateway}/v1/wechat/callback?{urlencode(params)}", content=body, timeout=30)
        assert r.status_code == 200 and r.text == "success", r.text
        return r

    def outbox(self) -> list[dict[str, str]]:
        r = httpx.get(
            f"{self.running.gateway}/v1/wechat/outbox",
            params={"openid": self.openid},
            headers=self.running.admin,
            timeout=30,
        )
        assert r.status_code == 200
        return r.json()["messages"]  # type: ignore[no-any-return]

    def replies_after(self, before: int, timeout: float = 30) -> str:
        """The messages sent since `before`, once they stop coming (the turn runs after the answer)."""
        deadline, count, steady = time.monotonic() + timeout, before, 0.0
        while time.monotonic() < deadline:
            now = len(self.outbox())
            if now > count:
                count, steady = now, time.monotonic()
            elif count > before and time.monotonic() - steady > 0.8:
                break
            time.sleep(0.1)
        assert count > before, "no reply reached the outbox"
        return "\n".join(m["text"] for m in self.outbox()[before:])

    def says(self, text: str, msg_id: str | None = None) -> str:
        before = len(self.outbox())
        self.push({"MsgType": "text", "Content": text, "MsgId": msg_id or str(uuid.uuid4().int)[:19]})
        return self.replies_after(before)

    def conversation_id(self, database_url: str) -> str:
        with transaction(database_url) as s:
            cid = s.scalar(select(WeChatUser.conversation_id).where(WeChatUser.openid == self.openid))
        assert cid is not None
        return cid

    def idle(self, database_url: str) -> None:
        with transaction(database_url) as s:
            s.execute(update(WeChatUser).where(WeChatUser.openid == self.openid).values(last_interaction_at=LONG_AGO))


def test_a_wechat_holder_verifies_and_is_quoted_the_ledgers_amount_once(running: Running, database_url: str) -> None:
    holder = new_holder(running, overdue_days=45)
    user = Follower(running)
    greeting = user.says("你好")
    assert "示例银行信用卡中心" in greeting and "手机号码" in greeting
    assert "验证通过" in user.says(holder.credentials())
    msg_id = str(uuid.uuid4().int)[:19]
    answer = user.says("我现在欠多少钱", msg_id=msg_id)
    account = view(running, holder)
    assert fen_to_text(yuan_to_fen(account["amount_due"])) in answer

    sent = len(user.outbox())
    user.push({"MsgType": "text", "Content": "我现在欠多少钱", "MsgId": msg_id})  # WeChat's retry
    time.sleep(1.5)
    assert len(user.outbox()) == sent
    cid = user.conversation_id(database_url)
    with transaction(database_url) as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == cid))
        assert conv is not None and conv.channel == "wechat"
        rows = s.scalars(
            select(Message).where(Message.conversation_pk == conv.id, Message.sender == "user").order_by(Message.seq)
        ).all()
        assert [m.text for m in rows].count("我现在欠多少钱") == 1
        assert rows[0].intent == "greet"  # Rasa parsed it
        binding = wechat.active_binding(s, user.openid)
        assert binding is not None and binding.conversation_id == cid


def test_after_idle_minutes_or_unbinding_nothing_is_disclosed_until_verified_again(
    running: Running, database_url: str
) -> None:
    holder = new_holder(running, overdue_days=45)
    amount = fen_to_text(yuan_to_fen(view(running, holder)["amount_due"]))
    user = Follower(running)
    user.says("你好")
    assert "验证通过" in user.says(holder.credentials())
    first = user.conversation_id(database_url)

    user.idle(database_url)  # someone else picks up the phone much later
    answer = user.says("我现在欠多少钱")
    assert amount not in answer and "元" not in answer
    assert user.conversation_id(database_url) != first
    assert "验证通过" in user.says(f"身份证后四位{holder.id_last4}，卡号后四位{holder.card_last4}")  # phone is known
    assert amount in user.says("我现在欠多少钱")

    assert "解除绑定" in user.says("解绑")
    answer = user.says("我现在欠多少钱")
    assert amount not in answer and "手机号码" in answer
    with transaction(database_url) as s:
        assert wechat.active_binding(s, user.openid) is None


def _scene_for(running: Running, database_url: str, holder: Holder) -> str:
    with transaction(database_url) as s:  # a reminder sent to this holder, as the campaign sender records it
        pk = conduct.account_pk(s, holder.account_id)
        attempt_id = s.execute(
            insert(ContactAttempt)
            .values(account_pk=pk, channel="wechat", status="sent", reason="ok", bucket="M2")
            .returning(ContactAttempt.id)
        ).scalar_one()
    # Issued long ago with a long life: valid on any date these tests run.
    issued = datetime(2026, 1, 1, tzinfo=UTC)
    return links.issue(attempt_id, running.secrets["LINK_SIGNING_KEY"], issued, timedelta(days=365 * 40))


def test_following_from_a_signed_qr_code_starts_in_context_and_still_verifies(
    running: Running, database_url: str
) -> None:
    holder = new_holder(running, overdue_days=45)
    user = Follower(running)
    user.push(
        {"MsgType": "event", "Event": "subscribe", "EventKey": f"qrscene_{_scene_for(running, database_url, holder)}"}
    )
    greeting = user.replies_after(0)
    assert "示例银行信用卡中心" in greeting and "提醒" in greeting and "身份证" in greeting and "元" not in greeting
    with transaction(database_url) as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == user.conversation_id(database_url)))
        assert conv is not None and conv.claimed_phone == holder.phone and conv.verified_at is None
    answer = user.says("我现在欠多少钱")
    assert "元" not in answer
    assert "验证通过" in user.says(f"身份证后四位{holder.id_last4}，卡号后四位{holder.card_last4}")


def test_a_forged_scene_only_greets(running: Running, database_url: str) -> None:
    user = Follower(running)
    user.push({"MsgType": "event", "Event": "subscribe", "EventKey": "qrscene_1.4102444800.forgedforgedforged"})
    greeting = user.replies_after(0)
    assert "手机号码" in greeting  # the ordinary greeting: nothing is tied
    with transaction(database_url) as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == user.conversation_id(database_url)))
        assert conv is not None and conv.claimed_phone is None


def test_the_menu_brings_a_person_whose_replies_reach_wechat(running: Running, database_url: str) -> None:
    user = Follower(running)
    user.push({"MsgType": "event", "Event": "CLICK", "EventKey": "request_human"})
    assert "人工" in user.replies_after(0)
    cid = user.conversation_id(database_url)
    name = f"wx-{uuid.uuid4().hex[:6]}"
    httpx.post(
        f"{running.gateway}/v1/agents",
        headers=running.admin,
        json={"username": name, "password": "long enough pw", "display_name": "小王"},
    )
    token = httpx.post(f"{running.gateway}/v1/agent/login", data={"username": name, "password": "long enough pw"})
    agent = {"Authorization": f"Bearer {token.json()['access_token']}"}
    queue = httpx.get(f"{running.gateway}/v1/agent/queue", headers=agent).json()
    assert any(i["conversation_id"] == cid and i["channel"] == "wechat" for i in queue)
    assert httpx.post(f"{running.gateway}/v1/agent/conversations/{cid}/claim", headers=agent).status_code == 200
    before = len(user.outbox())
    r = httpx.post(
        f"{running.gateway}/v1/agent/conversations/{cid}/messages", json={"text": "您好，我是小王"}, headers=agent
    )
    assert r.status_code == 200
    assert user.outbox()[before:][0]["text"] == "您好，我是小王"


def test_recognised_voice_is_understood_like_text(running: Running, database_url: str) -> None:
    user = Follower(running)
    before = len(user.outbox())
    user.push(
        {
            "MsgType": "voice",
            "MediaId": "m",
            "Format": "amr",
            "Recognition": "你好",
            "MsgId": "77" + uuid.uuid4().hex[:12],
        }
    )
    assert "手机号码" in user.replies_after(before)


def test_a_stop_request_in_wechat_stops_reminders_to_that_follower(running: Running, database_url: str) -> None:
    user = Follower(running)
    user.says("退订")
    with transaction(database_url) as s:
        follower = s.scalar(select(WeChatUser).where(WeChatUser.openid == user.openid))
        assert follower is not None and follower.reminders_opted_out_at is not None


def test_the_local_push_script_talks_to_the_gateway_as_wechat_would(running: Running) -> None:
    env = {**os.environ, **running.secrets, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.wechat_push",
            "--gateway",
            running.gateway,
            "--openid",
            f"o-script-{uuid.uuid4().hex[:8]}",
            "你好",
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "callback: 200 success" in done.stdout and "[text]" in done.stdout and "手机号码" in done.stdout
