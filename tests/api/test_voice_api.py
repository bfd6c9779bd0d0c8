"""Voice webhooks at the API: TwiML by Twilio's schema, the dev secret and Twilio's signature, replays,
silence, an answering machine (the bot never asked) and the outbox of calls placed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import datetime
from urllib.parse import parse_qs
from xml.etree import ElementTree as ET

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.channels.twilio import twilio_signature
from api.channels.voice.provider import TwilioVoice
from api.channels.voice.twiml import Twiml
from jobs.campaign_sender import CampaignSender
from jobs.voice_dialer import VoiceDialer
from ledger import accounts, calls, campaigns, conduct
from ledger.clock import Clock, process_clock
from ledger.db import Database
from ledger.models import ContactAttempt, Conversation, Message, OutboundSms, VoiceCall
from ledger.policy import Policy
from settings import Settings, get_settings
from tests.conftest import TZ
from tests.factories import record

# Twilio's TwiML reference: the verbs used here, and the attributes each may carry.
VERBS: dict[str, set[str]] = {
    "Say": {"voice", "language", "loop"},
    "Gather": {
        "input",
        "action",
        "method",
        "language",
        "timeout",
        "speechTimeout",
        "finishOnKey",
        "numDigits",
        "actionOnEmptyResult",
        "hints",
        "profanityFilter",
        "speechModel",
    },
    "Enqueue": {"action", "method", "waitUrl", "waitUrlMethod", "workflowSid"},
    "Dial": {"action", "method", "timeout", "callerId", "record"},
    "Hangup": set(),
}
NESTS = {"Response": {"Say", "Gather", "Enqueue", "Dial", "Hangup"}, "Gather": {"Say", "Play", "Pause"}}


def valid_twiml(body: str) -> ET.Element:
    """Parse and check against Twilio's published rules: known verbs and attributes, Say in Mandarin,
    Gather for speech and keypad in Mandarin pointing back at /v1/voice/gather."""
    root = ET.fromstring(body.encode())
    assert root.tag == "Response"

    def walk(el: ET.Element) -> None:
        for child in el:
            assert child.tag in NESTS.get(el.tag, set()), f"<{child.tag}> inside <{el.tag}>"
            assert set(child.attrib) <= VERBS[child.tag], child.attrib
            if child.tag == "Say":
                assert child.get("language") == "cmn-CN" and child.get("voice") == "Polly.Zhiyu" and child.text
            if child.tag == "Gather":
                assert child.get("input") in ("speech dtmf", "dtmf") and child.get("language") == "cmn-Hans-CN"
                assert "/v1/voice/gather?turn=" in (child.get("action") or "")
            if child.tag == "Hangup":
                assert not list(child) and not (child.text or "").strip()
            walk(child)

    walk(root)
    return root


def said(root: ET.Element) -> str:
    return "".join(el.text or "" for el in root.iter("Say"))


def _sid() -> str:
    return f"CA{uuid.uuid4().hex}"


def _phone() -> str:
    return f"137{uuid.uuid4().int % 10**8:08d}"


def test_the_twiml_builder_writes_the_verbs_twilio_documents() -> None:
    body = str(Twiml().gather("https://x/v1/voice/gather?turn=1", "你好").say("再见").enqueue().hangup())
    root = valid_twiml(body)
    assert [el.tag for el in root] == ["Gather", "Say", "Enqueue", "Hangup"]
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>')


def test_an_inbound_call_opens_with_who_and_the_recording_and_asks_for_the_keypad(
    client: TestClient, db: Database
) -> None:
    sid, phone = _sid(), _phone()
    form = {"CallSid": sid, "From": f"+86{phone}", "To": "+8610690000", "Direction": "inbound"}
    r = client.post("/v1/voice/inbound", data=form)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/xml")
    root = valid_twiml(r.text)
    assert "录音" in said(root) and "请在按键上输入" in said(root)
    again = client.post("/v1/voice/inbound", data=form)  # a replayed CallSid: the same answer, nothing new
    assert again.text == r.text
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(VoiceCall).where(VoiceCall.call_sid == sid)) == 1
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == f"voice-{sid}"))
        assert conv is not None and conv.channel == "voice"
        assert conv.claimed_phone == phone and not conv.phone_proven  # a caller ID is only a claim


def test_webhooks_need_the_dev_secret(client: TestClient) -> None:
    form = {"CallSid": _sid(), "From": "+8613700001111", "Direction": "inbound"}
    r = client.post("/v1/voice/inbound", data=form, headers={"X-SMS-Dev-Secret": "wrong"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_signature"


def test_the_providers_webhooks_are_not_held_to_the_public_per_address_limit(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every call's turns and every SMS come from the provider's few addresses: with the public
    limit at 3 a minute, the fourth web request is refused but the provider's keep being answered."""
    from api.limits import limiter
    from settings import get_settings

    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "3")
    get_settings.cache_clear()
    limiter.reset()
    calls = [client.post("/v1/voice/status", data={"CallSid": _sid(), "CallStatus": "completed"}) for _ in range(6)]
    texts = [
        client.post("/v1/sms/status", data={"MessageSid": f"SM{i}", "MessageStatus": "delivered"}) for i in range(6)
    ]
    assert [r.status_code for r in calls] == [204] * 6 and [r.status_code for r in texts] == [204] * 6
    web = [client.post("/v1/chat/sessions").status_code for _ in range(4)]
    assert web == [201, 201, 201, 429]


@pytest.fixture
def twilio_voice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICE_PROVIDER", "twilio")
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "twilio-secret")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bank.example")


def test_in_twilio_mode_the_signature_is_checked_and_a_bad_one_stores_nothing(
    twilio_voice: None, client: TestClient, db: Database
) -> None:
    sid = _sid()
    form = {"CallSid": sid, "From": "+8613700001111", "Direction": "inbound", "CallStatus": "ringing"}
    bad = client.post("/v1/voice/inbound", data=form, headers={"X-Twilio-Signature": "forged"})
    assert bad.status_code == 403
    with db.transaction() as s:
        assert s.scalar(select(func.count()).select_from(VoiceCall).where(VoiceCall.call_sid == sid)) == 0
    signature = twilio_signature("https://bank.example/v1/voice/inbound", form, "twilio-secret")
    ok = client.post("/v1/voice/inbound", data=form, headers={"X-Twilio-Signature": signature})
    assert ok.status_code == 200
    gather = valid_twiml(ok.text).find("Gather")
    assert gather is not None and gather.get("action") == "https://bank.example/v1/voice/gather?turn=1"
    turn = {"CallSid": sid, "Digits": "0"}
    signed = twilio_signature("https://bank.example/v1/voice/gather?turn=1", turn, "twilio-secret")
    tampered = client.post(
        "/v1/voice/gather?turn=1", data={**turn, "Digits": "9"}, headers={"X-Twilio-Signature": signed}
    )
    assert tampered.status_code == 403


def test_silence_gets_one_reprompt_then_the_keypad_menu_then_goodbye(client: TestClient) -> None:
    sid = _sid()
    client.post("/v1/voice/inbound", data={"CallSid": sid, "From": "+8613700002222", "Direction": "inbound"})
    first = valid_twiml(client.post("/v1/voice/gather?turn=1", data={"CallSid": sid}).text)
    assert "没有听清" in said(first)
    low = {"CallSid": sid, "SpeechResult": "嗯", "Confidence": "0.1"}
    second = valid_twiml(client.post("/v1/voice/gather?turn=2", data=low).text)
    assert "按1" in said(second) and "按0转人工" in said(second)
    assert second.find("Gather") is not None and second.find("Gather").get("input") == "dtmf"  # type: ignore[union-attr]
    third = valid_twiml(client.post("/v1/voice/gather?turn=3", data={"CallSid": sid}).text)
    assert third.find("Hangup") is not None and "再见" in said(third)


def test_a_replayed_gather_is_answered_as_before_and_the_bot_hears_it_once(client: TestClient, db: Database) -> None:
    sid = _sid()
    client.post("/v1/voice/inbound", data={"CallSid": sid, "From": "+8613700003333", "Direction": "inbound"})
    turn = {"CallSid": sid, "SpeechResult": "我要转人工", "Confidence": "0.93"}
    first = client.post("/v1/voice/gather?turn=1", data=turn)
    replay = client.post("/v1/voice/gather?turn=1", data=turn)
    assert first.status_code == replay.status_code == 200 and replay.text == first.text
    valid_twiml(first.text)
    with db.transaction() as s:
        conv = s.scalar(select(Conversation).where(Conversation.conversation_id == f"voice-{sid}"))
        assert conv is not None
        heard = s.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.conversation_pk == conv.id, Message.sender == "user")
        )
        assert heard == 1


def _placed_call(db: Database, phone: str) -> str:
    sid = _sid()
    with db.transaction() as s:
        attempt = ContactAttempt(
            channel="call",
            purpose="campaign",
            to_phone=phone,
            status="sent",
            reason="ok",
            bucket="M1",
            sent_at=process_clock().now(),  # the tests' frozen clock (TEST_CLOCK)
        )
        s.add(attempt)
        s.flush()
        s.add(
            VoiceCall(
                call_sid=sid,
                direction="outbound-api",
                phone=phone,
                conversation_id=f"voice-{sid}",
                attempt_pk=attempt.id,
                provider="outbox",
                url="http://testserver/v1/voice/inbound",
                status="queued",
                turn=0,
                silences=0,
            )
        )
    return sid


def test_an_answering_machine_hears_only_who_called_and_a_number(
    client: TestClient, db: Database, admin: dict[str, str]
) -> None:
    phone = _phone()
    sid = _placed_call(db, phone)
    listed = client.get(f"/v1/voice/outbox?to={phone}", headers=admin).json()
    assert [c["call_sid"] for c in listed] == [sid] and listed[0]["url"].endswith("/v1/voice/inbound")
    assert client.get(f"/v1/voice/outbox?to={phone}").status_code == 401
    form = {"CallSid": sid, "To": f"+86{phone}", "Direction": "outbound-api", "AnsweredBy": "machine_end_beep"}
    root = valid_twiml(client.post("/v1/voice/inbound", data=form).text)
    words = said(root)
    assert "回电" in words and "元" not in words and "测试" not in words and root.find("Hangup") is not None
    assert root.find("Gather") is None
    status = {"CallSid": sid, "CallStatus": "completed", "AnsweredBy": "machine_end_beep"}
    assert client.post("/v1/voice/status", data=status).status_code == 204
    with db.transaction() as s:
        assert s.scalar(select(Conversation).where(Conversation.conversation_id == f"voice-{sid}")) is None
        call = s.scalar(select(VoiceCall).where(VoiceCall.call_sid == sid))
        assert call is not None and call.outcome == "machine"
        attempt = s.get(ContactAttempt, call.attempt_pk)
        assert attempt is not None and attempt.outcome == "machine"
    kpis = client.get("/v1/kpis", headers=admin).json()["calls"]
    assert kpis["placed"] >= 1 and kpis["outcomes"]["machine"] >= 1


def test_a_call_nobody_answers_is_recorded_as_no_answer(client: TestClient, db: Database) -> None:
    sid = _placed_call(db, _phone())
    assert client.post("/v1/voice/status", data={"CallSid": sid, "CallStatus": "no-answer"}).status_code == 204
    with db.transaction() as s:
        call = s.scalar(select(VoiceCall).where(VoiceCall.call_sid == sid))
        assert call is not None and call.outcome == "no_answer"
    unknown = client.post("/v1/voice/status", data={"CallSid": _sid(), "CallStatus": "completed"})
    assert unknown.status_code == 204
    stray = client.post("/v1/voice/gather?turn=1", data={"CallSid": _sid(), "Digits": "1"})
    assert valid_twiml(stray.text).find("Hangup") is not None  # not a call of ours: nothing is said


@pytest.fixture
def voice_settings(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.setenv("DATABASE_URL", db.url)
    monkeypatch.setenv("LINK_SIGNING_KEY", "test-link-key")
    monkeypatch.setenv("SMS_PROVIDER", "outbox")
    monkeypatch.setenv("VOICE_PROVIDER", "outbox")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def test_a_voice_campaign_is_decided_by_the_call_rules_and_only_the_dialer_places_it(
    voice_settings: Settings, db: Database, policy: Policy
) -> None:
    ten_am = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=TZ))
    no_calls, no_sms = record(phone=_phone()), record(phone=_phone())
    with db.transaction() as s:
        for rec in (no_calls, no_sms):
            accounts.upsert_account(s, rec)
        conduct.set_preference(s, conduct.cardholder_of(s, no_calls.account_id), "calls", "opted_out", ten_am, "t")
        conduct.set_preference(s, conduct.cardholder_of(s, no_sms.account_id), "sms", "opted_out", ten_am, "t")
        result = campaigns.create_campaign(
            s, "电话", campaigns.Segment(("M1",)), "reminder", None, policy.contact, ten_am, channel="voice"
        )
        mine = {
            a.to_phone: a
            for a in s.scalars(select(ContactAttempt).where(ContactAttempt.campaign_pk == result.campaign.id))
            if a.to_phone in (no_calls.phone, no_sms.phone)
        }
        assert {p: (a.channel, a.status, a.reason) for p, a in mine.items()} == {
            no_calls.phone: ("call", "skipped", "opted_out"),  # opted out of calls: never called
            no_sms.phone: ("call", "queued", "ok"),  # opted out of SMS only: may be called
        }
        attempt_id = mine[no_sms.phone].id

    async def run() -> tuple[int, int]:
        async with httpx.AsyncClient() as http:
            while await CampaignSender(voice_settings, policy, http, ten_am, db=db).run_once(limit=1000):
                pass  # the SMS sender leaves call attempts alone
            with db.transaction() as s:
                assert s.get(ContactAttempt, attempt_id).status == "queued"  # type: ignore[union-attr]
            dialer = VoiceDialer(voice_settings, policy, http, ten_am, db=db)
            first = 0
            while n := await dialer.run_once(limit=1000):
                first += n
            return first, await dialer.run_once()

    first, again = asyncio.run(run())
    assert first >= 1 and again == 0
    with db.transaction() as s:
        assert not s.scalars(select(OutboundSms).where(OutboundSms.to_phone == no_sms.phone)).all()
        [call] = calls.outbox(s, no_sms.phone)
        assert call.attempt_pk == attempt_id and call.url and call.url.endswith("/v1/voice/inbound")
        assert s.get(ContactAttempt, attempt_id).status == "sent"  # type: ignore[union-attr]
        assert calls.outbox(s, no_calls.phone) == []


def test_the_twilio_provider_places_a_call_with_machine_detection() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"sid": "CA0123"})

    settings = Settings(twilio_account_sid="AC123", twilio_auth_token="tok", twilio_from_number="+15550001111")

    async def place() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            return await TwilioVoice(settings, http).place("13700001111", "https://b/v1/voice/inbound", "https://b/s")

    assert asyncio.run(place()) == "CA0123"
    [req] = seen
    assert str(req.url) == "https://api.twilio.com/2010-04-01/Accounts/AC123/Calls.json"
    form = parse_qs(req.content.decode())
    assert form["To"] == ["+8613700001111"] and form["Url"] == ["https://b/v1/voice/inbound"]
    assert form["MachineDetection"] == ["Enable"] and "completed" in form["StatusCallbackEvent"]
