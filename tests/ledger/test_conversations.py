"""Identity verification and the message record."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from ledger import accounts, conversations
from ledger.clock import Clock
from ledger.conversations import TurnState
from ledger.db import Database
from ledger.masking import mask
from ledger.models import AuditLog, Conversation, Message
from tests.factories import record

IDLE = timedelta(minutes=15)


def test_all_three_facts_must_match(session: Session, clock: Clock) -> None:
    rec = record(phone="13911112222", id_last4="987X", card_last4="4321")
    accounts.upsert_account(session, rec)
    conv = conversations.get_or_create(session, "verify-ok-001", "web")
    assert conversations.verify(session, conv, "987X", "4321", clock).result == "need_more"  # no phone yet
    conversations.claim_phone(session, conv, "13911112222")
    outcome = conversations.verify(session, conv, "987x", "4321", clock)  # X in either case
    assert outcome.result == "verified" and outcome.account_id == rec.account_id
    assert conversations.verified_account_id(session, "verify-ok-001") == rec.account_id


def test_three_failures_lock_and_a_right_answer_after_does_not_unlock(session: Session, clock: Clock) -> None:
    rec = record(phone="13911113333", id_last4="1111", card_last4="2222")
    accounts.upsert_account(session, rec)
    conv = conversations.get_or_create(session, "verify-lock-01", "web")
    conversations.claim_phone(session, conv, "13911113333")
    results = [conversations.verify(session, conv, "0000", "2222", clock).result for _ in range(3)]
    assert results == ["retry", "retry", "locked"]
    assert conversations.verify(session, conv, "1111", "2222", clock).result == "locked"
    assert conversations.verified_account_id(session, "verify-lock-01") is None


def test_unknown_phone_fails_like_a_wrong_answer(session: Session, clock: Clock) -> None:
    conv = conversations.get_or_create(session, "verify-none-1", "web")
    conversations.claim_phone(session, conv, "13000000000")
    assert conversations.verify(session, conv, "1234", "5678", clock).result == "retry"


def test_messages_are_stored_masked_in_order(session: Session) -> None:
    conv = conversations.get_or_create(session, "record-0001", "web")
    texts = ["我的卡号是6222021234567890123", "身份证110105194912310021", "电话13812345678"]
    stored = [conversations.append_message(session, conv, "user", t) for t in texts]
    assert [m.seq for m in stored] == [1, 2, 3]
    assert "6222021234567890123" not in stored[0].text and "0123" not in stored[0].text
    assert "110105194912310021" not in stored[1].text
    assert stored[2].text == "电话138****5678"
    # A turn's replies are stored together: the next numbers, in order, masked the same way.
    replies = conversations.append_messages(
        session, conv, [Message(sender="bot", text="好的"), Message(sender="bot", text="卡号6222021234567890123")]
    )
    assert [(m.seq, m.channel) for m in replies] == [(4, "web"), (5, "web")] and conv.last_seq == 5
    assert "6222021234567890123" not in replies[1].text
    assert conversations.append_messages(session, conv, []) == [] and conv.last_seq == 5


def test_masking_keeps_what_identifies_nothing() -> None:
    # The last four of a card or an ID are verification answers (issue 16): nothing of them is kept.
    assert mask("卡号后四位5678，金额3500元") == "卡号后四位****，金额3500元"
    assert mask("6222 0212 3456 7890") == "****************"
    assert mask("还款2,145.00元，逾期45天，我下周五还1500") == "还款2,145.00元，逾期45天，我下周五还1500"


def test_complaint_references_survive_masking(session: Session, clock: Clock) -> None:
    """Regression: a reference of date + six hex digits that were all numbers was masked as a card."""
    from ledger.conduct import record_complaint

    for _ in range(200):
        reference = record_complaint(session, None, None, "投诉", clock, "test").reference
        assert mask(f"编号{reference}") == f"编号{reference}"


def test_guessing_across_fresh_conversations_is_stopped_per_phone(session: Session, clock: Clock) -> None:
    now = clock
    rec = record(phone="13911114444", id_last4="1111", card_last4="2222")
    accounts.upsert_account(session, rec)
    outcomes = []
    for i in range(7):  # a new conversation each time: the per-conversation lock never trips
        conv = conversations.get_or_create(session, f"guess-{i:03d}-x", "web")
        conversations.claim_phone(session, conv, rec.phone)
        outcomes.append(conversations.verify(session, conv, f"{i:04d}", "0000", now).result)
    assert outcomes == ["retry"] * 5 + ["locked"] * 2
    right = conversations.get_or_create(session, "guess-right-x", "web")
    conversations.claim_phone(session, right, rec.phone)
    assert conversations.verify(session, right, "1111", "2222", now).result == "locked"  # until a person checks


def test_a_holders_message_takes_the_next_seq_and_an_idle_verification_lapses(session: Session, clock: Clock) -> None:
    """The turn's own write (one statement on PostgreSQL, two on SQLite): the same row either way."""
    rec = record(phone="13911114444", id_last4="5555", card_last4="6666")
    accounts.upsert_account(session, rec)
    conv = conversations.get_or_create(session, "holder-msg-01", "web")
    conversations.append_message(session, conv, "bot", "您好", buttons=[{"title": "是", "payload": "/affirm"}])
    conversations.claim_phone(session, conv, "13911114444")
    assert conversations.verify(session, conv, "5555", "6666", clock).result == "verified"

    first = conversations.store_holder_message(session, conv, "电话13812345678", clock, IDLE)
    later = Clock.at(clock.now() + IDLE)  # a whole idle spell without a word from them
    second = conversations.store_holder_message(session, conv, "还在吗", later, IDLE, external_id="ext-1")
    session.expire_all()  # what the database holds, not what the session remembers

    rows = session.scalars(select(Message).where(Message.id.in_([first, second])).order_by(Message.seq)).all()
    assert [(m.seq, m.sender, m.channel, m.text, m.buttons, m.external_id) for m in rows] == [
        (2, "user", "web", "电话138****5678", None, None),
        (3, "user", "web", "还在吗", None, "ext-1"),
    ]
    assert all(m.created_at is not None for m in rows)
    # Offered payloads are read from stored buttons: the holder's messages add none.
    assert conversations.offered_payloads(session, conv) == {"/affirm"}
    row = session.scalar(select(Conversation).where(Conversation.id == conv.id))
    assert row is not None and row.last_seq == 3 and row.last_holder_at == later.now()
    assert row.verified_at is None  # lapsed: they must verify again before any detail
    lapses = session.scalars(select(AuditLog.action).where(AuditLog.action == "verify.lapsed")).all()
    assert lapses == ["verify.lapsed"]


def test_a_message_stored_without_waiting_for_the_disk_relaxes_that_transaction_alone(
    committed_db: Database, clock: Clock
) -> None:
    """`durable=False` lets one COMMIT skip the wait for the disk; the pooled connection's next
    transaction (the turn's replies, anyone's write) waits for the disk again."""
    if not committed_db.url.startswith("postgresql"):
        pytest.skip("PostgreSQL's synchronous_commit; SQLite commits as before")
    engine = committed_db.engine.execution_options()  # one connection for every transaction below
    with engine.connect() as conn:
        settings = []
        for durable in (True, False, True):
            with Session(bind=conn) as s, s.begin():
                conv = conversations.get_or_create(s, f"relaxed-{durable}-{clock.now():%H%M%S%f}", "web")
                conversations.store_holder_message(s, conv, "你好", clock, IDLE, durable=durable)
                settings.append(s.scalar(text("SHOW synchronous_commit")))
    assert settings == ["on", "off", "on"]


def test_the_bot_reads_first_only_where_storing_the_message_changes_nothing_it_reads(clock: Clock) -> None:
    now = clock.now()
    fresh, stale = now - IDLE + timedelta(seconds=1), now - IDLE

    def state(channel: str = "web", mode: str = "bot", verified: datetime | None = None) -> TurnState:
        return TurnState(channel, mode, verified, verified)

    cases = {
        "unknown conversation": (None, False),
        "another channel's": (state(channel="sms"), False),
        "a person has it": (state(mode="human"), False),
        "verification lapses with this message": (state(verified=stale), False),
        "not verified": (state(), True),
        "verified, within the idle window": (state(verified=fresh), True),
    }
    got = {name: conversations.bot_may_read_first(s, "web", now, IDLE) for name, (s, _) in cases.items()}
    assert got == {name: expected for name, (_, expected) in cases.items()}
    # The same rule as the store's: a holder who wrote since verifying keeps it from their last word.
    assert conversations.lapses(stale, fresh, now, IDLE) is False and conversations.lapses(stale, stale, now, IDLE)
