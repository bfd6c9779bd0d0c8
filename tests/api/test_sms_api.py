"""SMS: Twilio's webhook protocol and signature scheme, retries answered once, the outbox, splitting."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from starlette.websockets import WebSocketDisconnect

from api.channels.sms.provider import (
    SEGMENT_CHARS,
    TwilioProvider,
    as_sms,
    split_sms,
)
from api.channels.twilio import twilio_signature, valid_twilio_signature
from ledger.db import Database
from ledger.models import Conversation, Message
from ledger.policy import Policy
from settings import Settings


def test_signature_matches_twilios_documented_example() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    assert twilio_signature(url, params, "12345") == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert not valid_twilio_signature(url, {**params, "Digits": "1235"}, "12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ=")
    assert not valid_twilio_signature(url, params, "12345", None)


def test_long_replies_are_split_to_sms_length() -> None:
    text = (
        "截至今天，您的信用卡已逾期45天。还款2,145.00元即可恢复正常，其中本金1,500.00元、利息495.00元、违约金150.00元。"
        * 2
    )
    parts = split_sms(text)
    assert len(parts) > 1 and all(len(p) <= SEGMENT_CHARS for p in parts) and "".join(parts) == text
    assert split_sms("好的") == ["好的"]
    assert as_sms("请选择", [{"title": "查询欠款", "payload": "/x"}]) == "请选择（可回复：查询欠款）"


def _sid() -> str:
    return f"SM{uuid.uuid4().hex}"


def _count(db: Database, sid: str) -> int:
    with db.transaction() as s:
        return s.scalar(select(func.count()).select_from(Message).where(Message.external_id == sid)) or 0


def test_inbound_sms_is_answered_once_even_when_retried(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    phone = f"136{uuid.uuid4().int % 10**8:08d}"
    form = {"From": f"+86{phone}", "To": "+8610690000", "Body": "我想问下欠款", "MessageSid": _sid()}
    for _ in range(2):
        r = client.post("/v1/sms/inbound", data=form)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    assert _count(db, form["MessageSid"]) == 1
    sent = client.get(f"/v1/sms/outbox?to={phone}", headers=admin).json()
    assert len(sent) == 1 and "人工" in sent[0]["body"]  # Rasa is down here: the holding reply, once
    with db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == f"sms-{phone}"))
        assert conv is not None and conv.claimed_phone == phone and conv.channel == "sms"
    assert client.get(f"/v1/sms/outbox?to={phone}").status_code == 401


def test_bad_sender_is_refused(client: TestClient) -> None:
    r = client.post("/v1/sms/inbound", data={"From": "+1555", "Body": "hi", "MessageSid": _sid()})
    assert r.status_code == 422


@pytest.fixture
def twilio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SMS_PROVIDER", "twilio")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "twilio-secret")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bank.example")


def test_twilio_signature_is_checked_and_a_bad_one_stores_nothing(
    twilio_env: None, client: TestClient, db: Database
) -> None:
    twilio_client = client
    form = {"From": "+8613700001111", "To": "+8610690000", "Body": "退订", "MessageSid": _sid()}
    bad = twilio_client.post("/v1/sms/inbound", data=form, headers={"X-Twilio-Signature": "forged"})
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "bad_signature"
    assert _count(db, form["MessageSid"]) == 0
    missing = twilio_client.post("/v1/sms/inbound", data=form)
    assert missing.status_code == 403
    signature = twilio_signature("https://bank.example/v1/sms/inbound", form, "twilio-secret")
    ok = twilio_client.post("/v1/sms/inbound", data=form, headers={"X-Twilio-Signature": signature})
    assert ok.status_code == 200 and _count(db, form["MessageSid"]) == 1


def test_twilio_provider_speaks_the_messages_api() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"sid": "SM0123456789abcdef", "status": "queued"})

    settings = Settings(twilio_account_sid="AC123", twilio_auth_token="tok", twilio_from_number="+15550001111")

    async def send() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await TwilioProvider(settings, http).send("13800000002", "您好")

    assert asyncio.run(send()) == "SM0123456789abcdef"
    [req] = seen
    assert req.url == "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages.json"
    assert req.headers["authorization"].startswith("Basic ")
    assert parse_qs(req.content.decode()) == {
        "To": ["+8613800000002"],
        "From": ["+15550001111"],
        "Body": ["您好"],
        "StatusCallback": [f"{settings.public_base_url}/v1/sms/status"],  # where its receipts come back
    }


def test_an_sms_conversation_cannot_be_read_or_continued_from_the_web(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    """SMS conversation ids are predictable (sms-<phone>): the web chat API must not reach them."""
    phone = f"133{uuid.uuid4().int % 10**8:08d}"
    client.post("/v1/sms/inbound", data={"From": f"+86{phone}", "Body": "你好", "MessageSid": _sid()})
    assert client.get(f"/v1/chat/sms-{phone}/messages").status_code == 422
    assert client.post(f"/v1/chat/sms-{phone}/messages", json={"text": "我欠多少"}).status_code == 422
    with pytest.raises(WebSocketDisconnect), client.websocket_connect(f"/v1/chat/sms-{phone}/ws") as ws:
        ws.receive_json()  # refused before it is accepted: nothing is sent
    with db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == f"sms-{phone}"))
        assert conv is not None
        texts = s.scalars(select(Message.text).where(Message.conversation_pk == conv.id, Message.sender == "user"))
        assert list(texts) == ["你好"]


def _register(db: Database, number: str) -> str:
    from ledger import accounts
    from tests.factories import record

    rec = record(phone=number)
    with db.transaction() as s:
        accounts.upsert_account(s, rec)
    return rec.account_id


@pytest.mark.parametrize("word", ["退订", "TD", "t", "ＴＤ"])
def test_an_inbound_opt_out_stops_sms_to_that_number(
    client: TestClient, db: Database, policy: Policy, word: str
) -> None:
    from ledger import compliance, conduct

    registered, unregistered = (f"131{uuid.uuid4().int % 10**8:08d}" for _ in range(2))
    account_id = _register(db, registered)
    for number in (registered, unregistered):
        r = client.post("/v1/sms/inbound", data={"From": f"+86{number}", "Body": word, "MessageSid": _sid()})
        assert r.status_code == 200
    ten = datetime(2026, 12, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    with db.transaction() as s:
        pk = conduct.account_pk(s, account_id)
        for number, account_pk in ((registered, pk), (unregistered, None)):
            decision = compliance.decide_contact(
                s, phone=number, account_pk=account_pk, channel="sms", purpose="campaign", at=ten, rules=policy.contact
            )
            assert decision.reason == "number_suppressed", number
        # The number said 退订 to SMS only: a call to the holder is another matter.
        call = compliance.decide_contact(
            s, phone=registered, account_pk=pk, channel="call", purpose="agent", at=ten, rules=policy.contact
        )
        assert call.outcome == "send"


def _sms_conversation_with_agent(
    client: TestClient, admin: dict[str, str], db: Database, number: str
) -> dict[str, str]:
    """An SMS conversation a person has taken (Rasa is down in these tests: it goes to the queue)."""
    from tests.api.test_agents_api import login, make_agent

    client.post("/v1/sms/inbound", data={"From": f"+86{number}", "Body": "你好", "MessageSid": _sid()})
    agent = login(client, make_agent(client, admin))
    assert client.post(f"/v1/agent/conversations/sms-{number}/claim", headers=agent).status_code == 200
    return agent


def _set_last_inbound(db: Database, number: str, when: datetime) -> None:
    with db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == f"sms-{number}"))
        assert conv is not None
        for m in s.scalars(select(Message).where(Message.conversation_pk == conv.id, Message.sender == "user")):
            m.created_at = when


def test_an_agent_sms_goes_through_the_contact_decision(
    client: TestClient, admin: dict[str, str], db: Database
) -> None:
    from ledger.clock import Clock

    sh = ZoneInfo("Asia/Shanghai")
    number = f"130{uuid.uuid4().int % 10**8:08d}"
    _register(db, number)
    agent = _sms_conversation_with_agent(client, admin, db, number)
    chat = client.app.state.chat  # type: ignore[attr-defined]
    _set_last_inbound(db, number, datetime(2026, 4, 5, 9, 0, tzinfo=sh))
    url = f"/v1/agent/conversations/sms-{number}/messages"

    def outbox() -> list[str]:
        return [m["body"] for m in client.get(f"/v1/sms/outbox?to={number}", headers=admin).json()]

    before = outbox()
    # 23:00, the holder last wrote this morning: quiet hours, refused, the agent told when it may go.
    chat.clock = Clock.at(datetime(2026, 4, 5, 23, 0, tzinfo=sh))
    late = client.post(url, json={"text": "您好，我是人工客服"}, headers=agent)
    assert late.status_code == 409
    error = late.json()["error"]
    assert error["code"] == "contact_not_allowed" and error["details"]["reason"] == "quiet_hours"
    assert error["details"]["next_window"].startswith("2026-04-06T08:00")
    assert outbox() == before
    # 10:00 next day: it goes, and it counts against the person's cap for the day.
    chat.clock = Clock.at(datetime(2026, 4, 6, 10, 0, tzinfo=sh))
    assert client.post(url, json={"text": "您好，我是人工客服"}, headers=agent).status_code == 200
    chat.clock = Clock.at(datetime(2026, 4, 6, 11, 0, tzinfo=sh))
    capped = client.post(url, json={"text": "请问方便回电吗"}, headers=agent)
    assert capped.status_code == 409 and capped.json()["error"]["details"]["reason"] == "frequency_cap"
    # The holder writes at 11:20: answering within the reply window is a reply, past the cap.
    _set_last_inbound(db, number, datetime(2026, 4, 6, 11, 20, tzinfo=sh))
    chat.clock = Clock.at(datetime(2026, 4, 6, 11, 30, tzinfo=sh))
    assert client.post(url, json={"text": "收到，谢谢您"}, headers=agent).status_code == 200
    # ...but a reply window never opens quiet hours to an agent (issue 30): 22:58, then 23:00.
    _set_last_inbound(db, number, datetime(2026, 4, 6, 22, 58, tzinfo=sh))
    chat.clock = Clock.at(datetime(2026, 4, 6, 23, 0, tzinfo=sh))
    night = client.post(url, json={"text": "晚安"}, headers=agent)
    assert night.status_code == 409 and night.json()["error"]["details"]["reason"] == "quiet_hours"
    assert outbox()[len(before) :] == ["您好，我是人工客服", "收到，谢谢您"]


def test_an_agent_reviews_a_wrong_number_report_and_closes_the_request(
    client: TestClient, admin: dict[str, str], db: Database, policy: Policy
) -> None:
    from ledger import compliance, conduct
    from ledger.clock import Clock
    from tests.api.test_agents_api import login, make_agent

    number = f"135{uuid.uuid4().int % 10**8:08d}"
    account_id = _register(db, number)
    clock = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    with db.transaction() as s:
        pk = conduct.account_pk(s, account_id)
        row = conduct.suppress_number(s, number, "all", "wrong_number", clock, f"sms-{number}", account_pk=pk)
        request = conduct.open_request(s, "wrong_number", f"sms-{number}", "sms", number, "你打错了", clock)
        suppression_id, reference = row.id, request.reference
    agent = login(client, make_agent(client, admin))
    listed = client.get("/v1/agent/suppressions", headers=agent).json()
    mine = next(i for i in listed if i["id"] == suppression_id)
    assert mine["account_id"] == account_id and number not in str(mine)  # the number is masked
    requests = client.get("/v1/agent/contact-requests", headers=agent).json()
    assert any(r["reference"] == reference and r["kind"] == "wrong_number" for r in requests)
    assert client.get("/v1/agent/suppressions").status_code == 401
    r = client.post(f"/v1/agent/suppressions/{suppression_id}/review", json={"keep": False}, headers=agent)
    assert r.status_code == 200 and r.json()["active"] is False
    closed = client.post(f"/v1/agent/contact-requests/{reference}/close", headers=agent)
    assert closed.json()["status"] == "done"
    assert suppression_id not in [i["id"] for i in client.get("/v1/agent/suppressions", headers=agent).json()]
    with db.transaction() as s:
        decision = compliance.decide_contact(
            s, phone=number, account_pk=pk, channel="sms", purpose="campaign", at=clock.now(), rules=policy.contact
        )
    assert decision.outcome == "send"  # it was the holder's number after all


def test_delivery_receipts_move_an_sms_forward_once_signed(twilio_env: None, client: TestClient, db: Database) -> None:
    from ledger.models import OutboundSms

    sid = f"SM{uuid.uuid4().hex}"
    with db.transaction() as s:
        s.add(OutboundSms(to_phone="13700002222", body="您好", provider="twilio", provider_id=sid, status="sent"))

    def receipt(status: str, signed: bool = True) -> int:
        form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC123"}
        signature = twilio_signature("https://bank.example/v1/sms/status", form, "twilio-secret")
        headers = {"X-Twilio-Signature": signature if signed else "forged"}
        return client.post("/v1/sms/status", data=form, headers=headers).status_code

    def status() -> str:
        with db.transaction(readonly=True) as s:
            return str(s.scalar(select(OutboundSms.status).where(OutboundSms.provider_id == sid)))

    assert receipt("delivered", signed=False) == 403 and status() == "sent"  # a forged receipt changes nothing
    assert receipt("delivered") == 204 and status() == "delivered"
    assert receipt("delivered") == 204 and status() == "delivered"  # replayed
    assert receipt("sent") == 204 and status() == "delivered"  # late, out of order
    assert receipt("undelivered") == 204 and status() == "delivered"  # a final status stays
    form = {"MessageSid": "SMnotours", "MessageStatus": "failed"}
    signature = twilio_signature("https://bank.example/v1/sms/status", form, "twilio-secret")
    assert client.post("/v1/sms/status", data=form, headers={"X-Twilio-Signature": signature}).status_code == 204


@pytest.mark.parametrize(
    ("current", "reported", "after"),
    [
        ("sent", "queued", None),
        ("sent", "sent", None),
        ("sent", "delivered", "delivered"),
        ("sent", "undelivered", "undelivered"),
        ("sent", "failed", "failed"),
        ("sent", "read", None),  # not a status we know: ignored
        ("delivered", "failed", None),
        ("failed", "delivered", None),  # refused at hand-over: no receipt can revive it
    ],
)
def test_a_receipt_only_moves_a_message_forward(current: str, reported: str, after: str | None) -> None:
    from ledger.receipts import next_status

    assert next_status(current, reported) == after
