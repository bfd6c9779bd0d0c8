"""Conduct in chat: what someone not verified can change (nothing), what a third party learns
(nothing more), and what the holder's own requests record (exactly what was asked)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

import actions.account
import actions.conduct
from actions.account import ActionTellDebt
from actions.conduct import ActionDispute, ActionHardship, ActionStopContact, ActionThirdParty
from api import guard
from ledger import accounts, compliance, conduct, conversations
from ledger.clock import Clock
from ledger.db import transaction
from ledger.models import AuditLog, ContactPreference, ContactRequest, Hardship, Hold, NumberSuppression
from ledger.policy import Policy
from tests.actions import helpers
from tests.actions.helpers import actions_on, latest_message, phone, responses, tracker_of
from tests.factories import record

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 4, 5, 10, 0, tzinfo=SH)
FROZEN = Clock.at(NOW)


@pytest.fixture(autouse=True)
def _settings(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with actions_on(database_url, monkeypatch, FROZEN, (actions.conduct, actions.account)):
        yield


def run(action: Any, cid: str, text: str, intent: str) -> list[str]:
    return responses(action, tracker_of(cid, latest_message(text, intent)))


def conversation(database_url: str, number: str, channel: str = "web", verify: Any = None) -> str:
    cid = f"{'sms' if channel == 'sms' else 'act'}-{uuid.uuid4().hex[:10]}"
    with transaction(database_url) as s:
        conv = conversations.get_or_create(s, cid, channel)
        conversations.claim_phone(s, conv, number, proven=channel == "sms")  # an SMS's number is its sender's
        if verify is not None:
            assert conversations.verify(s, conv, verify.id_last4, verify.card_last4, FROZEN).result == "verified"
    return cid


def account_state(database_url: str, account_id: str) -> tuple[Any, ...]:
    """Everything an unverified request could wrongly change about an account and its person."""
    with transaction(database_url) as s:
        account = accounts.get_account(s, account_id)
        prefs = sorted(
            (p.channel, p.value)
            for p in s.scalars(
                select(ContactPreference).where(ContactPreference.cardholder_id == account.cardholder_id)
            )
        )
        holds = sorted(s.scalars(select(Hold.kind).where(Hold.account_pk == account.id, Hold.active)))
        suppressed = s.scalar(
            select(func.count())
            .select_from(NumberSuppression)
            .where(NumberSuppression.phone == account.cardholder.phone)
        )
        return prefs, holds, suppressed


def requests(database_url: str, cid: str) -> list[str]:
    with transaction(database_url) as s:
        return list(s.scalars(select(ContactRequest.kind).where(ContactRequest.conversation_id == cid)))


@pytest.mark.parametrize(
    ("action", "text", "intent", "kind"),
    [
        (ActionStopContact(), "退订", "stop_contact", "stop_contact"),
        (ActionStopContact(), "不要再联系我了，也别找我家人", "stop_contact", "stop_contact"),
        (ActionThirdParty(), "他已经去世了", "wrong_person", "deceased"),
        (ActionDispute(), "这笔是盗刷的，我没消费过", "dispute_charge", "dispute"),
        (ActionDispute(), "这张卡是别人冒名办的，不是我办的", "dispute_charge", "identity_theft"),
    ],
)
def test_an_unverified_request_changes_nothing_and_reads_the_same_for_any_phone(
    database_url: str, action: Any, text: str, intent: str, kind: str
) -> None:
    rec = record(phone=phone())
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    before = account_state(database_url, rec.account_id)
    on_registered = conversation(database_url, rec.phone)
    on_unknown = conversation(database_url, phone())
    said = [run(action, cid, text, intent) for cid in (on_registered, on_unknown)]
    assert said[0] == said[1]  # no oracle: the same words whether or not the phone is ours
    assert account_state(database_url, rec.account_id) == before
    # A person gets a ticket with what was said, for either phone.
    assert requests(database_url, on_registered) == [kind] == requests(database_url, on_unknown)
    with transaction(database_url) as s:
        stored = s.scalar(select(ContactRequest.text).where(ContactRequest.conversation_id == on_unknown))
    assert stored == text


def test_an_identity_theft_victim_is_not_promised_a_pause(database_url: str) -> None:
    cid = conversation(database_url, phone())
    said = run(ActionDispute(), cid, "有人冒用我的身份办了这张卡", "dispute_charge")
    assert said == ["utter_request_recorded", "utter_dispute_next_steps", "utter_identity_theft_help"]
    domain = guard.DOMAIN_FILE.read_text(encoding="utf-8")
    assert "暂停催收" not in domain


def test_a_third_party_after_verification_learns_nothing_more(database_url: str) -> None:
    rec = record(
        phone=phone(), statement_date=NOW.date() - timedelta(days=65), due_date=NOW.date() - timedelta(days=45)
    )
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    cid = conversation(database_url, rec.phone, verify=rec)
    assert run(ActionTellDebt(), cid, "我欠多少", "ask_debt_amount") == ["utter_debt_overdue"]
    assert run(ActionThirdParty(), cid, "我是他老婆，他不在，我替他问问", "wrong_person") == ["utter_third_party"]
    with transaction(database_url) as s:
        assert conversations.verified_account_id(s, cid) is None
        conv = conversations.find(s, cid)
        assert conv is not None and conv.verified_at is None
        ended = s.scalar(select(AuditLog.detail).where(AuditLog.action == "verify.ended", AuditLog.subject == cid))
    assert ended == {"reason": "third_party"}
    assert run(ActionTellDebt(), cid, "他欠多少", "ask_debt_amount") == ["utter_need_verification"]
    # Whatever still gets written to this conversation is guarded as unverified.
    assert guard.check("逾期45天，需还款2,145.00元", verified=False).blocked == "unverified_detail"


@pytest.mark.parametrize(
    ("text", "expected_prefs", "said"),
    [
        ("不要再联系我了", {"sms": "opted_out", "calls": "opted_out"}, ["utter_stop_contact_all"]),
        ("以后只发短信，别打电话", {"sms": "allowed", "calls": "opted_out"}, ["utter_stop_contact_calls"]),
        ("别联系我家人", {"sms": "allowed", "calls": "allowed"}, ["utter_stop_contact_third_party"]),
        ("别给我家里打电话", {"sms": "allowed", "calls": "allowed"}, ["utter_stop_contact_third_party"]),
        ("别再发短信了", {"sms": "opted_out", "calls": "allowed"}, ["utter_stop_contact_sms"]),
    ],
)
def test_the_holder_gets_exactly_what_was_asked_on_every_card(
    database_url: str, text: str, expected_prefs: dict[str, str], said: list[str]
) -> None:
    number = phone()
    first, second = record(phone=number), record(phone=number)
    with transaction(database_url) as s:
        accounts.upsert_account(s, first)
        accounts.upsert_account(s, second)
    cid = conversation(database_url, number, verify=first)
    assert run(ActionStopContact(), cid, text, "stop_contact") == said
    with transaction(database_url) as s:
        for rec in (first, second):  # the person's preference, on both cards
            view = accounts.account_view(s, rec.account_id, _policy(), FROZEN)
            assert {c: view.preferences[c][0] for c in ("sms", "calls")} == expected_prefs
        asked = s.scalars(
            select(ContactPreference.asked_by).where(
                ContactPreference.cardholder_id == conduct.cardholder_of(s, second.account_id),
                ContactPreference.asked_by.is_not(None),
            )
        ).all()
    assert asked and set(asked) == {cid}  # who asked, on the other card too


def test_an_sms_sender_decides_what_their_number_receives(database_url: str, policy: Policy) -> None:
    rec = record(phone=phone())
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    cid = conversation(database_url, rec.phone, channel="sms")
    assert run(ActionStopContact(), cid, "不要再给我打电话发短信了", "stop_contact") == [
        "utter_stop_contact_number_all"
    ]
    with transaction(database_url) as s:
        pk = conduct.account_pk(s, rec.account_id)
        for channel in ("sms", "call"):
            d = compliance.decide_contact(
                s, phone=rec.phone, account_pk=pk, channel=channel, purpose="campaign", at=NOW, rules=policy.contact
            )
            assert d.reason == "number_suppressed"
        # The holder's own preferences are untouched: the number spoke, not (provably) the holder.
        prefs = accounts.account_view(s, rec.account_id, policy, FROZEN).preferences
        assert prefs["sms"][0] == prefs["calls"][0] == "allowed"


def test_a_wrong_number_report_silences_the_number_until_an_agent_reviews(database_url: str, policy: Policy) -> None:
    rec = record(phone=phone())
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    cid = conversation(database_url, rec.phone, channel="sms")
    assert run(ActionThirdParty(), cid, "你打错了，这个号是我新办的", "wrong_person") == ["utter_wrong_person"]
    assert requests(database_url, cid) == ["wrong_number"]

    def reason() -> str:
        with transaction(database_url) as s:
            pk = conduct.account_pk(s, rec.account_id)
            return compliance.decide_contact(
                s, phone=rec.phone, account_pk=pk, channel="sms", purpose="campaign", at=NOW, rules=policy.contact
            ).reason

    assert reason() == "number_suppressed"
    with transaction(database_url) as s:
        row = s.scalar(select(NumberSuppression).where(NumberSuppression.phone == rec.phone))
        assert row is not None and row.reason == "wrong_number"
        conduct.review_suppression(s, row.id, "agent-li", keep=False, clock=FROZEN)  # it was the holder after all
    assert reason() == "ok"


def test_a_typed_phone_cannot_silence_someone_elses_number(database_url: str, policy: Policy) -> None:
    rec = record(phone=phone())
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    cid = conversation(database_url, rec.phone)  # web chat: anyone can type any number
    run(ActionThirdParty(), cid, "你打错了", "wrong_person")
    assert requests(database_url, cid) == ["wrong_number"]
    assert account_state(database_url, rec.account_id)[2] == 0


def test_hardship_is_recorded_with_its_kind_and_pauses_reminders(database_url: str) -> None:
    rec = record(
        phone=phone(), statement_date=NOW.date() - timedelta(days=65), due_date=NOW.date() - timedelta(days=45)
    )
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    cid = conversation(database_url, rec.phone, verify=rec)
    messages, _ = helpers.run(ActionHardship(), tracker_of(cid, latest_message("最近失业了，实在还不上", "hardship")))
    said = {m["response"]: m for m in messages}
    days = _policy().contact.hardship_pause_days
    until = NOW.date() + timedelta(days=days)
    assert said["utter_hardship_recorded"]["until"] == f"{until.month}月{until.day}日"
    with transaction(database_url) as s:
        row = s.scalar(select(Hardship).where(Hardship.phone == rec.phone))
        assert row is not None and (row.kind, row.pause_until) == ("job_loss", until)


def _policy() -> Policy:
    from actions.context import policy

    return policy()


def test_a_hardship_story_that_asks_for_periods_is_listened_to_once_then_offered(database_url: str) -> None:
    """ "我生病住院了 钱都花在治病上 能分60期吗" on an M4 account: the empathy once, then the 60-period plan."""
    rec = record(
        phone=phone(), statement_date=NOW.date() - timedelta(days=150), due_date=NOW.date() - timedelta(days=130)
    )
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    cid = conversation(database_url, rec.phone, verify=rec)
    text = "我生病住院了 钱都花在治病上 能分60期吗"
    said = responses(
        ActionHardship(), tracker_of(cid, latest_message(text, "hardship", [{"entity": "installments", "value": "60"}]))
    )
    assert said.count("utter_hardship_empathy") == 1
    assert "utter_personalized_periods_offer" in said
