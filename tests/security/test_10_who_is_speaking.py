"""Issue 30, "Who is speaking, and exactly what they asked": one regression test per numbered finding.

The actions run directly against the test database (a real Tracker, the NLU's cues and contact
clauses computed exactly as the bot computes them), as a cardholder's family and an attacker would.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

import actions.conduct
import actions.identity
from actions.conduct import ActionComplaint, ActionStopContact, ActionThirdParty
from actions.identity import ActionVerifyIdentity
from bot.contact_phrases import read
from ledger import accounts, compliance, conduct, conversations
from ledger.clock import Clock
from ledger.db import transaction
from ledger.models import Complaint, Conversation, HandoffTicket, NumberSuppression
from ledger.policy import Policy
from tests.actions import helpers
from tests.actions.helpers import actions_on, latest_message, responses, tracker_of
from tests.factories import record

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 4, 7, 10, 0, tzinfo=SH)  # a Tuesday morning
FROZEN = Clock.at(NOW)


@pytest.fixture(autouse=True)
def _settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with actions_on(database_url, monkeypatch, FROZEN, (actions.conduct, actions.identity)):
        yield


def phone() -> str:
    return helpers.phone("136")


def say(action: Any, cid: str, text: str, intent: str, **entities: str) -> list[str]:
    """What the bot answers `text` with, through `action`, the NLU's reading as the bot makes it."""
    # `text` is already as the normaliser leaves it (bot/normalize.py runs in the bot's environment)
    found = [{"entity": name, "value": value} for name, value in entities.items()]
    return responses(action, tracker_of(cid, latest_message(text, intent, found, contact=read(text))))


def holder(database_url: str) -> Any:
    rec = record(
        phone=phone(), statement_date=NOW.date() - timedelta(days=60), due_date=NOW.date() - timedelta(days=40)
    )
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    return rec


def sms_conversation(database_url: str, number: str) -> str:
    """A conversation on the SMS channel: its phone is its sender's, as the gateway records it."""
    cid = f"sms-{number}-{uuid.uuid4().hex[:6]}"
    with transaction(database_url) as s:
        conversations.claim_phone(s, conversations.create(s, cid, "sms"), number, proven=True)
    return cid


def conv(database_url: str, cid: str) -> Conversation:
    with transaction(database_url) as s:
        found = conversations.find(s, cid)
        assert found is not None
        s.expunge(found)
        return found


def test_1_a_third_party_who_says_so_can_never_verify_nor_file_on_the_holders_account(database_url: str) -> None:
    rec = holder(database_url)
    # The wife answers our SMS on her husband's phone, then types his ID and card digits.
    wife = sms_conversation(database_url, rec.phone)
    told = say(ActionThirdParty(), wife, "这是我老公的手机", "wrong_person")
    say(ActionThirdParty(), wife, "我是他老婆", "wrong_person")
    answer = say(ActionVerifyIdentity(), wife, "123X 6001", "inform", id_last4=rec.id_last4, card_last4=rec.card_last4)
    assert conv(database_url, wife).verified_at is None
    assert answer == ["utter_third_party_cannot_verify"]
    assert told == ["utter_third_party"]  # how the holder reaches us, how family may pay
    # The mother on web chat: she typed her son's phone and details, then "I'll have him call".
    mother = f"web-{uuid.uuid4().hex[:10]}"
    say(ActionThirdParty(), mother, "我是刘正他妈", "wrong_person")
    say(
        ActionVerifyIdentity(), mother, "x", "inform", phone=rec.phone, id_last4=rec.id_last4, card_last4=rec.card_last4
    )
    assert conv(database_url, mother).verified_at is None
    answer = say(ActionComplaint(), mother, "好的 我让他回来给你们打电话", "complain")
    with transaction(database_url) as s:
        assert s.scalar(select(func.count()).select_from(Complaint).where(Complaint.conversation_id == mother)) == 0
    assert answer == ["utter_third_party_noted"]
    # Saying it after verifying ends the verification, and none follows.
    own = sms_conversation(database_url, rec.phone)
    assert say(ActionVerifyIdentity(), own, "x", "inform", id_last4=rec.id_last4, card_last4=rec.card_last4) == [
        "utter_verified"
    ]
    say(ActionThirdParty(), own, "我是他同事，帮他问问", "wrong_person")
    say(ActionVerifyIdentity(), own, "x", "inform", id_last4=rec.id_last4, card_last4=rec.card_last4)
    assert conv(database_url, own).verified_at is None


def test_2_a_mixed_contact_request_is_recorded_exactly_not_broadened(database_url: str, policy: Policy) -> None:
    rec = holder(database_url)
    cid = sms_conversation(database_url, rec.phone)
    say(ActionVerifyIdentity(), cid, "x", "inform", id_last4=rec.id_last4, card_last4=rec.card_last4)
    answer = say(ActionStopContact(), cid, "短信可以发 电话白天别打", "stop_contact")
    with transaction(database_url) as s:
        prefs = accounts.account_view(s, rec.account_id, policy, FROZEN).preferences
        assert prefs["sms"][0] == "allowed"
        assert prefs["calls"][0] == "restricted"
        evening = {"days": "all", "from": "18:00", "to": f"{policy.contact.window_end:%H:%M}"}  # within the policy's
        assert prefs["calls"][3] == {"windows": [evening], "places": {}}
        pk = conduct.account_pk(s, rec.account_id)

        def decide(channel: compliance.Channel, at: datetime) -> compliance.Decision:
            return compliance.decide_contact(
                s, phone=rec.phone, account_pk=pk, channel=channel, purpose="notice", at=at, rules=policy.contact
            )

        assert decide("sms", NOW).outcome == "send"
        call = decide("call", NOW)
        assert call.outcome == "defer" and call.reason == "preferred_hours"
        assert call.send_at == NOW.replace(hour=18)
    assert answer == ["utter_contact_preferences_recorded"]  # read back: what is recorded, in words
    # A time and a place said on their own are recorded too, and read back.
    say(ActionStopContact(), cid, "工作日别打电话", "stop_contact")
    say(ActionStopContact(), cid, "别打单位电话", "stop_contact")
    with transaction(database_url) as s:
        prefs = accounts.account_view(s, rec.account_id, policy, FROZEN).preferences
        assert prefs["calls"][3] == {"windows": [], "places": {"workplace": "forbidden"}}
        assert prefs["sms"][0] == "allowed"


def test_3_a_typed_number_never_replaces_the_channels_own(database_url: str, policy: Policy) -> None:
    victim = holder(database_url)
    attacker = phone()
    cid = sms_conversation(database_url, attacker)
    say(ActionVerifyIdentity(), cid, victim.phone, "inform", phone=victim.phone)
    assert conv(database_url, cid).claimed_phone == attacker
    say(ActionStopContact(), cid, "别给我打电话，也别发短信", "stop_contact")
    say(ActionThirdParty(), cid, "你打错了，这不是他的号码", "wrong_person")
    with transaction(database_url) as s:
        silenced = s.scalar(
            select(func.count()).select_from(NumberSuppression).where(NumberSuppression.phone == victim.phone)
        )
        assert silenced == 0
        # The attacker's own late-evening message does not open the way for an agent's SMS at 22:35.
        late = NOW.replace(hour=22, minute=35)
        decision = compliance.decide_contact(
            s,
            phone=attacker,
            account_pk=None,
            channel="sms",
            purpose="agent",
            at=late,
            rules=policy.contact,
            last_inbound_at=late - timedelta(minutes=1),
        )
        assert decision.outcome != "send"


def test_4_strangers_cannot_lock_the_holder_out_nor_fill_the_queue(database_url: str) -> None:
    rec = holder(database_url)
    guesses = [f"web-{uuid.uuid4().hex[:10]}" for _ in range(3)]
    for cid, tries in zip(guesses, (3, 2, 1), strict=True):
        for _ in range(tries):
            say(ActionVerifyIdentity(), cid, "x", "inform", phone=rec.phone, id_last4="0000", card_last4="0000")
    with transaction(database_url) as s:
        tickets = s.scalar(
            select(func.count())
            .select_from(HandoffTicket)
            .join(Conversation, Conversation.id == HandoffTicket.conversation_pk)
            .where(Conversation.conversation_id.in_(guesses))
        )
        assert tickets == 1
    own = sms_conversation(database_url, rec.phone)
    answer = say(ActionVerifyIdentity(), own, "x", "inform", id_last4=rec.id_last4, card_last4=rec.card_last4)
    assert answer == ["utter_verified"]
