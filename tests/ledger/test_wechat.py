"""WeChat followers: pushes once, conversations that lapse when idle, bindings made only by verifying."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from ledger import accounts, conversations, wechat
from ledger.clock import Clock
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
