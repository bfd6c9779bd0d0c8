"""WeChat: the published protocol (signature, safe mode), pushes stored once and answered at once,
message kinds and events, agent replies through the customer-service API inside the 48-hour window."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, update

from api.channels.wechat.provider import BadSignature, Push, deliver, encrypt_push, push_xml, read_push, signature
from api.channels.wechat.reminders import check_template as check_wechat_template
from jobs.campaign_sender import CampaignSender
from ledger import accounts, campaigns, conversations, wechat
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.models import (
    ContactAttempt,
    ContactPreference,
    Conversation,
    Message,
    WeChatOutbound,
    WeChatPush,
    WeChatUser,
)
from ledger.policy import Policy
from settings import Settings, get_settings
from tests.api.test_agents_api import login, make_agent
from tests.conftest import TZ
from tests.factories import record

TOKEN = "wxtesttoken"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APP_ID = "wx0000000000000001"

# WeChat's own sample for safe mode (token spamtest, its EncodingAESKey and AppID, one text push).
SAMPLE_ENCRYPT = (
    "hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2Ld"
    "JF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5"
    "VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgC"
    "SUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9Ghgl"
    "F2PE="
)
SAMPLE_BODY = (
    "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]>"
    "</FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]>"
    f"</Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[{SAMPLE_ENCRYPT}]]></Encrypt></xml>"
)


def _sample_settings() -> Settings:
    return Settings(
        wechat_token=SecretStr("spamtest"),
        wechat_encoding_aes_key=SecretStr(AES_KEY),
        wechat_app_id="wx2c2769f8efd9abc2",
    )


def test_the_published_safe_mode_sample_decrypts() -> None:
    params = {"timestamp": "1409735669", "nonce": "1320562132", "encrypt_type": "aes"}
    params["signature"] = signature("spamtest", params["timestamp"], params["nonce"])
    params["msg_signature"] = "5d197aaffba7e9b25a30732f161a50dee96bd5fa"  # as published
    push = read_push(_sample_settings(), SAMPLE_BODY.encode(), params)
    assert (push.openid, push.kind, push.text, push.msg_id) == (
        "oyORnuP8q7ou2gfYjqLzSIWZf0rs",
        "text",
        "abcdteT",
        "6054768590064713728",
    )
    with pytest.raises(BadSignature):
        read_push(_sample_settings(), SAMPLE_BODY.encode(), {**params, "msg_signature": "0" * 40})
    with pytest.raises(BadSignature):  # another account's AppID inside: not ours
        read_push(_sample_settings().model_copy(update={"wechat_app_id": "wx-other"}), SAMPLE_BODY.encode(), params)


@pytest.fixture
def wx(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The gateway with WeChat configured; `@pytest.mark.parametrize("wx", ["aes"], indirect=True)` for safe mode."""
    monkeypatch.setenv("WECHAT_TOKEN", TOKEN)
    monkeypatch.setenv("WECHAT_APP_ID", APP_ID)
    monkeypatch.setenv("WECHAT_ENCODING_AES_KEY", AES_KEY if getattr(request, "param", "plain") == "aes" else "")
    yield request.getfixturevalue("client")


def _openid() -> str:
    return f"o{uuid.uuid4().hex[:27]}"


def _now_stamp() -> str:
    """WeChat's timestamp for a push sent now (the suite's clock): pushes outside 5 minutes are refused."""
    return str(int(process_clock().now().timestamp()))


def _query(nonce: str | None = None, timestamp: str | None = None, **extra: str) -> dict[str, str]:
    """A push's signed query; each push its own nonce, as WeChat sends (a nonce used twice is a replay)."""
    nonce, timestamp = nonce or uuid.uuid4().hex[:10], timestamp or _now_stamp()
    return {"timestamp": timestamp, "nonce": nonce, "signature": signature(TOKEN, timestamp, nonce), **extra}


def _post(client: TestClient, fields: dict[str, str | int], aes: bool = False, **query: str) -> int:
    xml = push_xml({"ToUserName": "gh_bank", "CreateTime": 1700000000, **fields})
    params = _query(**query)
    if aes:
        settings = Settings(
            wechat_token=SecretStr(TOKEN), wechat_encoding_aes_key=SecretStr(AES_KEY), wechat_app_id=APP_ID
        )
        xml = encrypt_push(settings, xml, params["nonce"], params["timestamp"])
        envelope = read_envelope(xml)
        params.update(encrypt_type="aes", msg_signature=envelope["MsgSignature"])
        xml = push_xml({"ToUserName": "gh_bank", "Encrypt": envelope["Encrypt"]})
    r = client.post(f"/v1/wechat/callback?{urlencode(params)}", content=xml.encode())
    if r.status_code == 200:
        assert r.text == "success"
    return r.status_code


def read_envelope(xml: str) -> dict[str, str]:
    import xmltodict  # type: ignore[import-untyped]

    return dict(xmltodict.parse(xml)["xml"])


def _text(openid: str, text: str, msg_id: str | None = None) -> dict[str, str | int]:
    return {"FromUserName": openid, "MsgType": "text", "Content": text, "MsgId": msg_id or str(uuid.uuid4().int)[:18]}


def _outbox(client: TestClient, admin: dict[str, str], openid: str) -> list[dict[str, str]]:
    r = client.get("/v1/wechat/outbox", params={"openid": openid}, headers=admin)
    assert r.status_code == 200
    return r.json()["messages"]  # type: ignore[no-any-return]


def _conversation(db: Database, openid: str) -> str:
    with db.transaction() as s:
        cid = s.scalar(select(WeChatUser.conversation_id).where(WeChatUser.openid == openid))
    assert cid is not None
    return cid


def _user_messages(db: Database, cid: str) -> list[str]:
    with db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == cid))
        assert conv is not None and conv.channel == "wechat"
        rows = s.scalars(
            select(Message.text)
            .where(Message.conversation_pk == conv.id, Message.sender == "user")
            .order_by(Message.seq)
        )
        return list(rows)


def test_the_server_verification_handshake(wx: TestClient) -> None:
    good = _query(echostr="4711abc")
    r = wx.get("/v1/wechat/callback", params=good)
    assert r.status_code == 200 and r.text == "4711abc"
    assert wx.get("/v1/wechat/callback", params={**good, "signature": "0" * 40}).status_code == 403
    assert wx.get("/v1/wechat/callback", params={**good, "nonce": "other"}).status_code == 403


def test_a_push_is_answered_at_once_and_a_retry_is_processed_once(
    wx: TestClient, admin: dict[str, str], db: Database
) -> None:
    openid = _openid()
    push = _text(openid, "我想问下欠款")
    assert _post(wx, push) == 200
    assert _post(wx, push) == 200  # WeChat's retry after 5 s: same MsgId
    sent = _outbox(wx, admin, openid)
    assert len(sent) == 1 and sent[0]["kind"] == "text" and "人工" in sent[0]["text"]  # Rasa is down here
    assert _user_messages(db, _conversation(db, openid)) == ["我想问下欠款"]
    assert wx.get("/v1/wechat/outbox", params={"openid": openid}).status_code == 401


def test_a_bad_signature_is_refused_and_nothing_is_stored(wx: TestClient, db: Database) -> None:
    openid = _openid()
    assert _post(wx, _text(openid, "你好"), signature="0" * 40) == 403
    assert _post(wx, _text(openid, "你好"), signature=signature(TOKEN, "1", "nonce1")) == 403
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(WeChatPush).where(WeChatPush.openid == openid)) == 0
        assert s.scalar(select(WeChatUser.id).where(WeChatUser.openid == openid)) is None


def test_what_is_not_a_push_is_refused(wx: TestClient) -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><xml><Content>&b;</Content></xml>'
    )
    for body in (bomb, "<xml><Content>no sender</Content></xml>", "not xml"):
        r = wx.post(f"/v1/wechat/callback?{urlencode(_query())}", content=body.encode())
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_push"


@pytest.mark.parametrize("wx", ["aes"], indirect=True)
def test_safe_mode_pushes_are_decrypted_and_plain_ones_refused(
    wx: TestClient, admin: dict[str, str], db: Database
) -> None:
    openid = _openid()
    assert _post(wx, _text(openid, "你好"), aes=True) == 200
    assert _user_messages(db, _conversation(db, openid)) == ["你好"]
    assert len(_outbox(wx, admin, openid)) == 1
    intruder = _openid()
    assert _post(wx, _text(intruder, "你好")) == 403  # the body of a plain push is not signed
    xml = push_xml({"ToUserName": "gh_bank", "Encrypt": "AAAA" + "B" * 60})
    stamp = _now_stamp()
    params = _query("nonce1", stamp, encrypt_type="aes", msg_signature=signature(TOKEN, stamp, "nonce1", "forged"))
    assert wx.post(f"/v1/wechat/callback?{urlencode(params)}", content=xml.encode()).status_code == 403


def test_voice_uses_the_recognition_else_asks_to_type(wx: TestClient, admin: dict[str, str], db: Database) -> None:
    openid = _openid()
    voice = {"FromUserName": openid, "MsgType": "voice", "MediaId": "m1", "Format": "amr"}
    assert _post(wx, {**voice, "MsgId": "9001" + uuid.uuid4().hex[:8]}) == 200
    [asked] = _outbox(wx, admin, openid)
    assert "输入文字" in asked["text"]
    assert _post(wx, {**voice, "Recognition": "我想分期", "MsgId": "9002" + uuid.uuid4().hex[:8]}) == 200
    assert _user_messages(db, _conversation(db, openid)) == ["[语音]", "我想分期"]


def test_an_image_gets_a_short_answer_and_the_option_of_a_person(wx: TestClient, admin: dict[str, str]) -> None:
    openid = _openid()
    image = {"FromUserName": openid, "MsgType": "image", "PicUrl": "http://x/y.jpg", "MsgId": uuid.uuid4().hex[:16]}
    assert _post(wx, image) == 200
    [answer] = _outbox(wx, admin, openid)
    assert "文字" in answer["text"] and "转人工" in answer["text"]


def test_events_are_processed_once_and_unsubscribing_is_recorded(
    wx: TestClient, admin: dict[str, str], db: Database
) -> None:
    openid = _openid()
    subscribe = {"FromUserName": openid, "MsgType": "event", "Event": "subscribe", "CreateTime": 1700000100}
    assert _post(wx, subscribe) == 200
    assert _post(wx, subscribe) == 200  # the retry: same FromUserName + CreateTime
    assert len(_outbox(wx, admin, openid)) == 1  # one greeting (the holding one: Rasa is down here)
    assert _post(wx, {**subscribe, "Event": "unsubscribe", "CreateTime": 1700000200}) == 200
    with db.transaction() as s:
        follower = s.scalar(select(WeChatUser).where(WeChatUser.openid == openid))
        assert follower is not None and not follower.subscribed and follower.unsubscribed_at is not None


def test_a_menu_click_or_a_tapped_choice_is_the_bots_button(wx: TestClient, db: Database) -> None:
    openid = _openid()
    click = {"FromUserName": openid, "MsgType": "event", "Event": "CLICK", "EventKey": "request_human"}
    assert _post(wx, click) == 200
    with db.transaction() as s:  # the bot sent a menu message with this choice in the conversation
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == _conversation(db, openid)))
        assert conv is not None
        conversations.append_message(
            s, conv, "bot", "请选择：", buttons=[{"title": "查询欠款", "payload": "/ask_debt_amount"}]
        )
    tapped = {**_text(openid, "查询欠款"), "bizmsgmenuid": "ask_debt_amount"}  # a choice in that menu message
    assert _post(wx, tapped) == 200
    forged = {**_text(openid, "随便"), "bizmsgmenuid": "inform"}  # not a button the bot sent here: plain text
    assert _post(wx, forged) == 200
    messages = _user_messages(db, _conversation(db, openid))
    assert messages == ["/request_human", "/ask_debt_amount", "随便"]


def test_agent_replies_go_out_guarded_and_only_inside_the_48_hour_window(
    wx: TestClient, admin: dict[str, str], db: Database
) -> None:
    openid = _openid()
    assert _post(wx, _text(openid, "转人工")) == 200  # Rasa is down: the conversation waits for a person
    cid = _conversation(db, openid)
    agent = login(wx, make_agent(wx, admin))
    [item] = [i for i in wx.get("/v1/agent/queue", headers=agent).json() if i["conversation_id"] == cid]
    assert item["channel"] == "wechat" and item["last_messages"][0] == {"sender": "user", "text": "转人工"}
    assert wx.post(f"/v1/agent/conversations/{cid}/claim", headers=agent).status_code == 200
    r = wx.post(f"/v1/agent/conversations/{cid}/messages", json={"text": "您好，我是人工客服小王"}, headers=agent)
    assert r.status_code == 200
    r = wx.post(f"/v1/agent/conversations/{cid}/messages", json={"text": "您欠款 2145.00 元"}, headers=agent)
    assert r.status_code == 422 and r.json()["error"]["code"] == "message_blocked"  # not verified: the agent is told
    texts = [m["text"] for m in _outbox(wx, admin, openid)]
    assert texts[-1] == "您好，我是人工客服小王" and not any("2145" in t for t in texts)

    with db.transaction() as s:  # the holder last wrote long ago
        s.execute(
            update(WeChatUser)
            .where(WeChatUser.openid == openid)
            .values(last_interaction_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    r = wx.post(f"/v1/agent/conversations/{cid}/messages", json={"text": "还在吗？"}, headers=agent)
    assert r.status_code == 409 and r.json()["error"]["code"] == "outside_service_window"
    assert len(_outbox(wx, admin, openid)) == len(texts)
    transcript = wx.get(f"/v1/conversations/{cid}/transcript", headers=admin).json()
    assert "还在吗？" not in str(transcript)


def test_the_wechat_provider_calls_the_message_apis_and_renews_an_expired_token(db: Database) -> None:
    calls: list[tuple[str, str | None, dict[str, object]]] = []
    tokens = iter(["tok-1", "tok-2"])

    def api(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        calls.append((request.url.path, request.url.params.get("access_token"), body))
        if request.url.path == "/cgi-bin/stable_token":
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 7200})
        if request.url.path == "/cgi-bin/message/custom/send":
            sends_with_first = [c for c in calls if c[0].endswith("/custom/send") and c[1] == "tok-1"]
            if request.url.params.get("access_token") == "tok-1" and len(sends_with_first) > 1:
                return httpx.Response(200, json={"errcode": 42001, "errmsg": "access_token expired"})
            return httpx.Response(200, json={"errcode": 0, "errmsg": "ok"})
        return httpx.Response(200, json={"errcode": 43004, "errmsg": "require subscribe"})

    settings = Settings(
        database_url=db.url,
        wechat_provider="wechat",
        wechat_app_id=f"wx{uuid.uuid4().hex[:16]}",
        wechat_app_secret=SecretStr("app-secret"),
        wechat_api_base="https://wechat.invalid",
    )
    openid = _openid()

    async def run() -> list[str]:
        async with httpx.AsyncClient(transport=httpx.MockTransport(api)) as http:
            first = await deliver(settings, http, openid, "您好", "wx-test", db=db)
            second = await deliver(settings, http, openid, "还在吗", "wx-test", db=db)  # token expired meanwhile
            buttons = [{"title": "查询欠款", "payload": "/ask_debt_amount"}]
            menu = await deliver(settings, http, openid, "请问有什么可以帮您？", "wx-test", buttons=buttons, db=db)
            template = await deliver(settings, http, openid, "提醒", template=("tpl-1", {"first": "提醒"}, None), db=db)
            return [first.status, second.status, menu.status, template.status]

    assert asyncio.run(run()) == ["sent", "sent", "sent", "failed"]
    paths = [c[0] for c in calls]
    assert paths.count("/cgi-bin/stable_token") == 2  # once, then renewed once
    assert calls[0][2] == {
        "grant_type": "client_credential",
        "appid": settings.wechat_app_id,
        "secret": "app-secret",
        "force_refresh": False,
    }
    assert calls[1][2] == {"touser": openid, "msgtype": "text", "text": {"content": "您好"}}
    assert calls[-2][2] == {  # the bot's buttons as a menu message
        "touser": openid,
        "msgtype": "msgmenu",
        "msgmenu": {"head_content": "请问有什么可以帮您？", "list": [{"id": "ask_debt_amount", "content": "查询欠款"}]},
    }
    assert calls[-1][2] == {"touser": openid, "template_id": "tpl-1", "data": {"first": {"value": "提醒"}}}
    with db.transaction() as s:
        failed = s.scalars(
            select(WeChatOutbound).where(WeChatOutbound.openid == openid).order_by(WeChatOutbound.id)
        ).all()[-1]
        assert failed.kind == "template" and failed.error is not None and "43004" in failed.error


def test_a_wechat_campaign_reaches_bound_holders_with_a_template_message(
    db: Database, policy: Policy, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No gateway runs here: its own background sender (on the real clock) must not take the sends.
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("WECHAT_PROVIDER", "outbox")
    get_settings.cache_clear()
    ten_am = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=TZ))
    openid = _openid()
    with db.transaction() as s:
        bound = accounts.upsert_account(s, record(phone=f"137{uuid.uuid4().int % 10**8:08d}", id_last4="555X"))
        unbound = accounts.upsert_account(s, record(phone=f"137{uuid.uuid4().int % 10**8:08d}"))
        s.execute(  # opted out of SMS only: opt-outs are per channel
            update(ContactPreference)
            .where(ContactPreference.cardholder_id == bound.cardholder_id, ContactPreference.channel == "sms")
            .values(value="opted_out")
        )
        current = wechat.conversation_for(s, openid, ten_am.now(), timedelta(minutes=15))
        conv = conversations.find(s, current.conversation_id)
        assert conv is not None
        conversations.claim_phone(s, conv, bound.cardholder.phone)
        assert conversations.verify(s, conv, "555X", bound.card_last4, ten_am).result == "verified"
        assert wechat.bind_if_verified(s, openid, conv.conversation_id, ten_am.now())
        result = campaigns.create_campaign(
            s, "微信提醒", campaigns.Segment(("M1",)), "reminder", None, policy.contact, ten_am, channel="wechat"
        )
        attempts = dict(
            s.execute(
                select(ContactAttempt.account_pk, ContactAttempt.channel).where(
                    ContactAttempt.campaign_pk == result.campaign.id
                )
            ).all()
        )
    assert attempts.get(bound.id) == "wechat" and unbound.id not in attempts  # only holders with a bound openid

    async def send() -> int:
        async with httpx.AsyncClient() as http:
            return await CampaignSender(get_settings(), policy, http, clock=ten_am, db=db).run_once()

    assert asyncio.run(send()) >= 1
    asyncio.run(send())  # nothing twice
    get_settings.cache_clear()
    with db.transaction() as s:
        [reminder] = s.scalars(select(WeChatOutbound).where(WeChatOutbound.openid == openid)).all()
        assert reminder.kind == "template" and reminder.status == "sent"
        assert "示例银行" in reminder.text and "退订" in reminder.text and "元" not in reminder.text
        status = s.scalar(select(ContactAttempt.status).where(ContactAttempt.campaign_pk == result.campaign.id))
        assert status == "sent"


def test_campaigns_choose_sms_or_wechat(wx: TestClient, admin: dict[str, str], policy: Policy) -> None:
    body = {"name": "x", "segment": {"buckets": ["M1"]}, "template": "reminder", "channel": "fax"}
    assert wx.post("/v1/campaigns", json=body, headers=admin).status_code == 422
    r = wx.post("/v1/campaigns", json={**body, "channel": "wechat", "template": "nope"}, headers=admin)
    assert r.status_code == 422 and r.json()["error"]["code"] == "template_not_allowed"
    assert check_wechat_template("reminder", policy) is None


def test_unbinding_is_confirmed_even_while_a_person_has_the_conversation(
    wx: TestClient, admin: dict[str, str], db: Database
) -> None:
    openid = _openid()
    assert _post(wx, _text(openid, "转人工")) == 200  # Rasa is down here: a person takes over
    cid = _conversation(db, openid)
    assert _post(wx, _text(openid, "解绑")) == 200
    assert "解除绑定" in _outbox(wx, admin, openid)[-1]["text"]
    assert _conversation(db, openid) == cid  # the person keeps the conversation
    assert _user_messages(db, cid) == ["转人工", "解绑"]


def test_a_push_answered_before_a_crash_is_handled_when_the_gateway_starts(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, admin: dict[str, str], db: Database
) -> None:
    monkeypatch.setenv("WECHAT_TOKEN", TOKEN)
    openid = _openid()
    push = Push(openid=openid, kind="text", created="1700000000", msg_id=f"66{uuid.uuid4().int % 10**16}", text="你好")
    with db.transaction() as s:  # stored and answered "success", then the gateway died
        assert wechat.record_push(s, push.dedupe_key, openid, push.kind, asdict(push))
        s.execute(
            update(WeChatPush)
            .where(WeChatPush.dedupe_key == push.dedupe_key)
            .values(received_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    client: TestClient = request.getfixturevalue("client")  # a gateway starts
    for _ in range(100):
        if _outbox(client, admin, openid):
            break
        time.sleep(0.1)
    assert len(_outbox(client, admin, openid)) == 1
    assert _user_messages(db, _conversation(db, openid)) == ["你好"]
    for _ in range(100):  # the push is marked handled just after its reply went out
        with db.transaction() as s:
            done = s.scalar(select(WeChatPush).where(WeChatPush.dedupe_key == push.dedupe_key))
            assert done is not None
            if done.done_at is not None:
                break
        time.sleep(0.1)
    assert done.done_at is not None and done.payload is None
    assert client.portal is not None
    assert client.portal.call(client.app.state.wechat.recover) == 0  # nothing twice
