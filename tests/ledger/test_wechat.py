"""WeChat followers: pushes once, conversations that lapse when idle, bindings made only by verifying."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from ledger import accounts, campaigns, conversations, wechat
from ledger.clock import Clock
from ledger.models import Account, ContactAttempt, Hold
from ledger.policy import Policy
from tests.factories import record

IDLE = timedelta(minutes=15)


def _openid() -> str:
    return f"o{uuid.uuid4().hex[:27]}"


def _verify(session: Session, cid: str, clock: Clock, phone: str = "13922223333") -> str:
    rec = record(phone=phone, id_last4="555X", card_last4="7788")
    accounts.upsert_account(session, rec)
    conv = conversations.find(session, cid)
    assert conv is not None
    conversations.claim_phone(session, conv, phone)
    assert conversations.verify(session, conv, "555X", "7788", clock).result == "verified"
    return rec.account_id


def test_a_push_is_recorded_once(session: Session) -> None:
    key = f"msg:{uuid.uuid4().int}"
    assert wechat.record_push(session, key, "o1", "text")
    assert not wechat.record_push(session, key, "o1", "text")


def test_an_openid_is_bound_only_after_verifying_in_its_conversation(session: Session, clock: Clock) -> None:
    openid = _openid()
    current = wechat.conversation_for(session, openid, clock.now(), IDLE)
    assert current.started and current.conversation_id.startswith("wx-")
    assert not wechat.bind_if_verified(session, openid, current.conversation_id, clock.now())
    assert wechat.active_binding(session, openid) is None
    _verify(session, current.conversation_id, clock)
    assert wechat.bind_if_verified(session, openid, current.conversation_id, clock.now())
    assert not wechat.bind_if_verified(session, openid, current.conversation_id, clock.now())  # once
    assert wechat.active_binding(session, openid) is not None


def test_verification_lapses_after_the_idle_minutes(session: Session, clock: Clock) -> None:
    openid = _openid()
    first = wechat.conversation_for(session, openid, clock.now(), IDLE)
    account_id = _verify(session, first.conversation_id, clock, phone="13922224444")
    wechat.bind_if_verified(session, openid, first.conversation_id, clock.now())
    later = clock.now() + IDLE - timedelta(seconds=1)
    assert wechat.conversation_for(session, openid, later, IDLE).conversation_id == first.conversation_id
    assert conversations.verified_account_id(session, first.conversation_id) == account_id

    after_idle = later + IDLE
    fresh = wechat.conversation_for(session, openid, after_idle, IDLE)
    assert fresh.started and fresh.lapsed and fresh.conversation_id != first.conversation_id
    assert conversations.verified_account_id(session, fresh.conversation_id) is None
    conv = conversations.find(session, fresh.conversation_id)
    assert conv is not None and conv.claimed_phone == "13922224444"  # tied to the holder, not verified


def test_a_conversation_a_person_has_is_kept_but_its_verification_lapses(session: Session, clock: Clock) -> None:
    openid = _openid()
    first = wechat.conversation_for(session, openid, clock.now(), IDLE)
    _verify(session, first.conversation_id, clock, phone="13922225555")
    conv = conversations.find(session, first.conversation_id)
    assert conv is not None
    conversations.open_ticket(session, conv, "request_human", 2, "")
    again = wechat.conversation_for(session, openid, clock.now() + IDLE * 2, IDLE)
    assert again.conversation_id == first.conversation_id and again.lapsed
    assert conversations.verified_account_id(session, first.conversation_id) is None


def test_unbinding_ends_the_binding_and_the_disclosure(session: Session, clock: Clock) -> None:
    openid = _openid()
    first = wechat.conversation_for(session, openid, clock.now(), IDLE)
    _verify(session, first.conversation_id, clock, phone="13922226666")
    wechat.bind_if_verified(session, openid, first.conversation_id, clock.now())
    assert wechat.unbind(session, openid, clock.now(), "unbind")
    assert wechat.active_binding(session, openid) is None
    assert conversations.verified_account_id(session, first.conversation_id) is None
    nxt = wechat.conversation_for(session, openid, clock.now() + timedelta(seconds=5), IDLE)
    assert nxt.started and nxt.conversation_id != first.conversation_id
    conv = conversations.find(session, nxt.conversation_id)
    assert conv is not None and conv.claimed_phone is None


def test_the_48_hour_window(session: Session, clock: Clock) -> None:
    openid = _openid()
    current = wechat.conversation_for(session, openid, clock.now(), IDLE)
    assert wechat.require_service_window(session, current.conversation_id, clock.now() + timedelta(hours=47)) == openid
    with pytest.raises(wechat.OutsideServiceWindow):
        wechat.require_service_window(session, current.conversation_id, clock.now() + timedelta(hours=48))
    wechat.unsubscribed(session, openid, clock.now())
    assert not wechat.in_service_window(wechat.user(session, openid), clock.now())


def _bound_holder(session: Session, clock: Clock, phone: str) -> tuple[Account, str]:
    rec = record(phone=phone, id_last4="555X", card_last4="7788")
    account = accounts.upsert_account(session, rec)
    openid = _openid()
    current = wechat.conversation_for(session, openid, clock.now(), IDLE)
    _verify_existing(session, current.conversation_id, clock, phone)
    assert wechat.bind_if_verified(session, openid, current.conversation_id, clock.now())
    return account, openid


def _verify_existing(session: Session, cid: str, clock: Clock, phone: str) -> None:
    conv = conversations.find(session, cid)
    assert conv is not None
    conversations.claim_phone(session, conv, phone)
    assert conversations.verify(session, conv, "555X", "7788", clock).result == "verified"


def test_a_wechat_reminder_passes_the_same_conduct_rules_as_an_sms(
    session: Session, clock: Clock, policy: Policy
) -> None:
    account, openid = _bound_holder(session, clock, "13922227777")
    assert account.cardholder_id in wechat.bound_cardholders(session)
    assert wechat.reminder_openid(session, account.cardholder_id) == openid
    decide = lambda at: wechat.reminder_decision(session, account, openid, at, policy.contact)  # noqa: E731
    assert decide(clock.now()).outcome == "send"  # 10:00 local
    late = decide(clock.now().replace(hour=23))
    assert (late.outcome, late.reason) == ("defer", "quiet_hours") and late.send_at is not None
    assert late.send_at.hour == 8
    # An SMS already went to this person today: the cap counts across channels.
    session.add(
        ContactAttempt(
            account_pk=account.id,
            to_phone="13922227777",
            channel="sms",
            status="sent",
            reason="ok",
            bucket="M1",
            sent_at=clock.now(),
        )
    )
    session.flush()
    assert (decide(clock.now()).outcome, decide(clock.now()).reason) == ("skip", "frequency_cap")


def test_a_hold_or_the_followers_stop_request_stops_reminders(session: Session, clock: Clock, policy: Policy) -> None:
    account, openid = _bound_holder(session, clock, "13922228888")
    session.add(Hold(account_pk=account.id, kind="dispute", reason="", active=True))
    session.flush()
    assert wechat.reminder_decision(session, account, openid, clock.now(), policy.contact).reason == "hold"

    other, other_openid = _bound_holder(session, clock, "13922229999")
    conv = conversations.find(session, wechat.user(session, other_openid).conversation_id or "")
    assert conv is not None
    conversations.append_message(session, conv, "user", "退订", intent="stop_contact", external_id="msg:stop-1")
    assert wechat.note_stop_request(session, other_openid, "msg:stop-1", clock.now())
    assert other.cardholder_id not in wechat.bound_cardholders(session)
    decision = wechat.reminder_decision(session, other, other_openid, clock.now(), policy.contact)
    assert (decision.outcome, decision.reason) == ("skip", "opted_out")


def test_a_queued_wechat_reminder_is_decided_once_in_the_ledger_at_send_time(
    session: Session, clock: Clock, policy: Policy
) -> None:
    account, openid = _bound_holder(session, clock, "13922226666")

    def queued() -> ContactAttempt:  # selected an hour ago, claimed for sending now
        attempt = ContactAttempt(account_pk=account.id, channel="wechat", purpose="campaign", status="sending")
        attempt.to_phone, attempt.reason, attempt.bucket = "13922226666", "ok", "M1"
        attempt.selected_at, attempt.scheduled_at = clock.now() - timedelta(hours=1), clock.now()
        session.add(attempt)
        session.flush()
        return attempt

    sending = campaigns.decide_at_send_time(session, queued(), clock.now(), policy.contact)
    assert (sending.outcome, sending.openid) == ("send", openid)  # the follower it goes to

    accounts.post_payment(session, account.account_id, 1_000, clock.now(), "wx-paid-1", policy, clock)
    paid = queued()
    decision = campaigns.decide_at_send_time(session, paid, clock.now(), policy.contact)
    assert (decision.outcome, paid.status, paid.reason) == ("skip", "skipped", "paid")

    wechat.unbind(session, openid, clock.now(), "解绑")
    gone = queued()
    decision = campaigns.decide_at_send_time(session, gone, clock.now(), policy.contact)
    assert (decision.outcome, gone.status, gone.reason) == ("skip", "skipped", "not_bound")
