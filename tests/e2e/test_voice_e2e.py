"""Whole calls through the voice webhooks (outbox provider, the real Rasa): a call in, verified by
keypad, amounts spoken, a promise; a voice campaign's calls, a person reached, an answering machine."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from sqlalchemy import select, update

from ledger import voice
from ledger.db import transaction
from ledger.models import Agent, ContactAttempt, Conversation, HandoffTicket, Message, VoiceCall
from ledger.money import yuan_to_fen
from tests.e2e.accounts import Holder, new_holder, said, today, view
from tests.e2e.conftest import Running
from tests.e2e.test_handoff_e2e import Console

pytestmark = [pytest.mark.e2e]


class Call:
    """One call as the provider drives it: each webhook posted with the dev secret, the TwiML kept."""

    def __init__(self, running: Running, sid: str | None = None) -> None:
        self.running = running
        self.sid = sid or f"CA{uuid.uuid4().hex}"
        self.twiml = ET.Element("Response")

    def post(self, path: str, **form: str) -> ET.Element:
        r = httpx.post(
            f"{self.running.gateway}{path}",
            data={"CallSid": self.sid, **form},
            headers=self.running.sms_headers,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/xml")
        self.twiml = ET.fromstring(r.content)
        return self.twiml

    @property
    def words(self) -> str:
        return "".join(el.text or "" for el in self.twiml.iter("Say"))

    def next_gather(self) -> str:
        gather = self.twiml.find("Gather")
        assert gather is not None, ET.tostring(self.twiml, encoding="unicode")
        action = gather.get("action") or ""
        return action[action.index("/v1/voice/") :]

    def say(self, speech: str, confidence: str = "0.92") -> str:
        self.post(self.next_gather(), SpeechResult=speech, Confidence=confidence)
        return self.words

    def keys(self, digits: str) -> str:
        self.post(self.next_gather(), Digits=digits)
        return self.words

    def ended(self, status: str = "completed", answered_by: str = "") -> None:
        form = {"CallSid": self.sid, "CallStatus": status, **({"AnsweredBy": answered_by} if answered_by else {})}
        r = httpx.post(
            f"{self.running.gateway}/v1/voice/status", data=form, headers=self.running.sms_headers, timeout=30
        )
        assert r.status_code == 204, r.text


def identity_keys(holder: Holder) -> str:
    return holder.id_last4.replace("X", "*") + holder.card_last4 + "#"


def outcome(database_url: str, sid: str) -> tuple[str | None, str | None]:
    with transaction(database_url) as s:
        call = s.scalar(select(VoiceCall).where(VoiceCall.call_sid == sid))
        assert call is not None
        attempt = s.get(ContactAttempt, call.attempt_pk) if call.attempt_pk else None
        return call.outcome, attempt.outcome if attempt else None


def test_a_call_in_verifies_by_keypad_hears_the_amount_in_words_and_makes_a_promise(
    running: Running, database_url: str
) -> None:
    holder = new_holder(running, overdue_days=25)
    call = Call(running)
    call.post("/v1/voice/inbound", From=f"+86{holder.phone}", To="+8610690000", Direction="inbound")
    assert "录音" in call.words and "请在按键上输入" in call.words and "元" not in call.words
    before_keys = call.next_gather()
    assert "验证通过" in call.keys(identity_keys(holder))
    replay = httpx.post(  # the provider retries the same gather: the same answer, the bot hears it once
        f"{running.gateway}{before_keys}",
        data={"CallSid": call.sid, "Digits": identity_keys(holder)},
        headers=running.sms_headers,
        timeout=30,
    )
    assert "验证通过" in replay.text
    owed = call.say("我现在欠多少钱")
    minimum = voice.spoken_amount(yuan_to_fen(view(running, holder)["minimum_payment"]))
    assert minimum in owed or voice.spoken_amount(yuan_to_fen(view(running, holder)["amount_due"])) in owed
    assert ".00元" not in owed  # written figures never reach the voice
    day = today() + timedelta(days=3)
    answer = call.say(f"我{said(day)}还1200")
    if not view(running, holder)["promises"] and "按1" in answer:
        answer = call.keys("1")  # the bot asked to confirm: its first quick reply, by keypad
    promises = view(running, holder)["promises"]
    assert [p["due_date"] for p in promises] == [day.isoformat()], answer
    assert voice.spoken_date(day) in answer
    with transaction(database_url) as s:  # nobody is available: a person means a callback
        s.execute(update(Agent).values(presence="away"))
    offer = call.keys("0")
    assert call.twiml.find("Enqueue") is None and "按1" in offer, offer
    call.keys("1")  # the first callback time offered
    with transaction(database_url) as s:
        ticket = s.scalar(
            select(HandoffTicket)
            .join(Conversation, Conversation.id == HandoffTicket.conversation_pk)
            .where(Conversation.conversation_id == f"voice-{call.sid}")
        )
        assert ticket is not None and ticket.callback_at is not None
    call.ended()
    assert outcome(database_url, call.sid)[0] == "promise"
    with transaction(database_url) as s:  # the transcript is kept masked, like every channel's
        texts = s.scalars(
            select(Message.text).where(Message.channel == "voice", Message.external_id.like(f"{call.sid}:%"))
        ).all()
    assert texts and not any(holder.card_last4 in t for t in texts)
    kpis = httpx.get(f"{running.gateway}/v1/kpis", headers=running.admin, timeout=60).json()
    assert kpis["calls"]["inbound"] >= 1 and kpis["calls"]["outcomes"]["promise"] >= 1


def _placed(running: Running, phone: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{running.gateway}/v1/voice/outbox", params={"to": phone}, headers=running.admin, timeout=30)
        if r.json():
            return r.json()[0]  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise AssertionError(f"no call was placed to {phone}")


def test_a_voice_campaign_calls_a_holder_who_reaches_a_person_and_a_machine_hears_only_a_number(
    running: Running, database_url: str
) -> None:
    with transaction(database_url) as s:  # nobody else's wait fills the agents' capacity
        s.execute(update(HandoffTicket).where(HandoffTicket.status == "waiting").values(parked=False))
    overdue = 70 + uuid.uuid4().int % 15
    person, machine = new_holder(running, overdue_days=overdue), new_holder(running, overdue_days=overdue)
    r = httpx.post(
        f"{running.gateway}/v1/campaigns",
        headers=running.admin,
        timeout=60,
        json={
            "name": "M3 电话提醒",
            "channel": "voice",
            "template": "reminder",
            "segment": {"min_overdue_days": overdue, "max_overdue_days": overdue},
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["queued"] >= 2

    # An answering machine: who called and a number to call back; no name, no amount, no bot.
    placed = _placed(running, machine.phone)
    assert placed["url"].endswith("/v1/voice/inbound")
    tape = Call(running, placed["call_sid"])
    tape.post("/v1/voice/inbound", To=f"+86{machine.phone}", Direction="outbound-api", AnsweredBy="machine_start")
    assert "回电" in tape.words and "元" not in tape.words and "测试用户" not in tape.words
    assert tape.twiml.find("Hangup") is not None and tape.twiml.find("Gather") is None
    tape.ended(answered_by="machine_start")
    assert outcome(database_url, tape.sid) == ("machine", "machine")

    # A person answers: who is calling and the recording, then verification by keypad, then a person.
    placed = _placed(running, person.phone)
    call = Call(running, placed["call_sid"])
    call.post("/v1/voice/inbound", To=f"+86{person.phone}", Direction="outbound-api", AnsweredBy="human")
    assert "录音" in call.words and "元" not in call.words
    assert "验证通过" in call.keys(identity_keys(person))
    agent = Console(running)
    assert agent.presence("available")["on_duty"] is True
    try:
        call.keys("0")
        assert call.twiml.find("Enqueue") is not None, call.words
    finally:
        agent.presence("away")
    call.ended()
    assert outcome(database_url, call.sid) == ("right_party", "right_party")
