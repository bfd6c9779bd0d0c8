"""A person when one is needed, and never silence (issue 29): who is on duty, what a handoff
becomes, what a waiting holder is told, when the wait runs out, callbacks."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from ledger import accounts, agents, conduct, conversations, duty, handoff
from ledger.clock import Clock
from ledger.errors import ValidationFailed
from ledger.models import Agent, Conversation, HandoffTicket, Message
from ledger.policy import Policy, parse_policy
from tests.conftest import TZ
from tests.factories import record

MONDAY_10 = datetime(2026, 12, 7, 10, 0, tzinfo=TZ)  # a Monday, in working hours
MONDAY_22 = datetime(2026, 12, 7, 22, 30, tzinfo=TZ)  # after them
SATURDAY_19 = datetime(2026, 12, 12, 19, 0, tzinfo=TZ)  # weekend hours end at 18:00


def test_working_hours_per_team_say_who_is_on_duty(policy: Policy) -> None:
    hours = policy.handoff
    assert duty.teams_on_duty(hours, MONDAY_10) == {"collections"}
    assert duty.teams_on_duty(hours, MONDAY_22) == frozenset()
    assert duty.teams_on_duty(hours, SATURDAY_19) == frozenset()
    assert duty.next_duty_start(hours, MONDAY_22) == datetime(2026, 12, 8, 9, 0, tzinfo=TZ)


def test_a_handoff_parks_the_holder_only_when_someone_on_duty_has_room(policy: Policy) -> None:
    h, c = policy.handoff, policy.contact
    parked = duty.decide_handoff(h, c, MONDAY_10, agents_present=1, waiting=1)
    assert (parked.kind, parked.position, parked.wait_minutes) == ("parked", 2, 2 * h.expected_wait_minutes)
    nobody = duty.decide_handoff(h, c, MONDAY_10, agents_present=0, waiting=0)
    assert nobody.kind == "off_duty" and nobody.person_from is None and nobody.callback_slots
    night = duty.decide_handoff(h, c, MONDAY_22, agents_present=2, waiting=0)
    assert night.kind == "off_duty" and night.person_from == datetime(2026, 12, 8, 9, 0, tzinfo=TZ)
    full = duty.decide_handoff(h, c, MONDAY_10, agents_present=1, waiting=h.capacity_per_agent)
    assert full.kind == "queue_full" and full.person_from is not None and full.callback_slots


def test_callback_times_are_in_working_hours_and_the_contact_window(policy: Policy) -> None:
    slots = duty.callback_slots(policy.handoff, policy.contact, MONDAY_22)
    assert len(slots) == policy.handoff.callback_slots
    for slot in slots:
        assert slot > MONDAY_22 and duty.teams_on_duty(policy.handoff, slot)
        assert policy.contact.window_start <= slot.time() < policy.contact.window_end
    assert duty.callback_allowed(policy.handoff, policy.contact, MONDAY_22, slots[0])
    assert not duty.callback_allowed(policy.handoff, policy.contact, MONDAY_22, MONDAY_22 + timedelta(hours=1))


@pytest.mark.parametrize(
    ("intent", "cues", "kind"),
    [
        ("withdraw_handoff", set(), "withdraw"),
        ("stop_contact", set(), "act_now"),
        ("wrong_person", set(), "act_now"),
        ("hardship", {"death"}, "act_now"),
        ("ask_debt_amount", set(), "status"),
        (None, set(), "status"),
    ],
)
def test_a_waiting_holders_message_is_withdrawn_acted_on_or_answered_with_the_wait(
    intent: str | None, cues: set[str], kind: str
) -> None:
    assert duty.while_waiting(intent, frozenset(cues)) == kind


def test_policy_refuses_duty_hours_that_end_before_they_start(policy: Policy) -> None:
    text = (
        "version: 1\ninstitution: {name: a, short_name: a, hotline: '1', app_name: a}\n"
        "fees: {interest_mode: full_balance, daily_interest_rate: '0.0005', late_fee: "
        "{rate: '0.05', escalated_rate: '0.05', escalate_after_misses: 2, minimum_fen: 0}}\n"
        "contact: {window_start: '08:00', window_end: '21:00', sms_per_day: 1, sms_per_7_days: 3}\n"
        "buckets: {"
        + ", ".join(f"{b}: {{offers: [full]}}" for b in ("M0", "M1", "M2", "M3", "M4", "M5", "M6", "M6+"))
        + "}\n"
        "handoff: {duty_hours: {day: [{days: all, start: '18:00', end: '09:00'}]}}\n"
    )
    with pytest.raises(Exception, match="start must be before end"):
        parse_policy(text, source="test")
    assert policy.handoff.max_wait_minutes > 0 and policy.handoff.duty_hours["collections"][0].start == time(9)


@pytest.fixture(autouse=True)
def empty_queue(request: pytest.FixtureRequest) -> None:
    """Inside the test's rolled-back transaction: nobody else waits and nobody is available, whatever
    other tests of the run committed to the shared database."""
    if "session" not in request.fixturenames:
        return
    session: Session = request.getfixturevalue("session")
    session.execute(update(HandoffTicket).where(HandoffTicket.status == "waiting").values(status="closed"))
    session.execute(update(Agent).values(presence="away"))


def _holder(session: Session, cid: str) -> Conversation:
    return conversations.get_or_create(session, cid, "web")


def _agent(session: Session, name: str, presence: str, at: datetime) -> None:
    agents.create_agent(session, name, "a-long-password", name, "test")
    handoff.set_presence(session, name, presence, at)


def test_nobody_present_is_not_silence_the_bot_keeps_the_holder_and_agents_keep_the_ticket(
    session: Session, policy: Policy
) -> None:
    conv = _holder(session, "duty-nobody-1")
    decision = handoff.request_person(session, conv, "requested", 2, "转人工", policy, MONDAY_10)
    assert decision.kind == "off_duty"
    assert conv.mode == "bot"  # the bot keeps serving
    [item] = [i for i in handoff.queue(session) if i.conversation_id == "duty-nobody-1"]
    assert item.status == "waiting" and not item.parked


def test_with_an_agent_present_the_holder_waits_and_hears_the_position_then_may_withdraw(
    session: Session, policy: Policy
) -> None:
    _agent(session, "duty-on-1", "available", MONDAY_10)
    conv = _holder(session, "duty-parked-1")
    decision = handoff.request_person(session, conv, "requested", 2, "转人工", policy, MONDAY_10)
    assert decision.kind == "parked" and conv.mode == "human"
    waiting = handoff.waiting_of(session, conv.id, policy, MONDAY_10 + timedelta(minutes=1))
    assert waiting is not None and waiting.position >= 1 and waiting.wait_minutes >= 1
    assert handoff.withdraw(session, "duty-parked-1", MONDAY_10 + timedelta(minutes=2))
    session.refresh(conv)
    assert conv.mode == "bot"
    assert handoff.waiting_of(session, conv.id, policy, MONDAY_10) is None
    assert not handoff.withdraw(session, "duty-parked-1", MONDAY_10)  # nothing left to withdraw


def test_an_unclaimed_wait_runs_out_the_bot_resumes_and_the_ticket_stays(session: Session, policy: Policy) -> None:
    _agent(session, "duty-on-2", "available", MONDAY_10)
    conv = _holder(session, "duty-timeout-1")
    handoff.request_person(session, conv, "requested", 2, "转人工", policy, MONDAY_10)
    just_before = MONDAY_10 + timedelta(minutes=policy.handoff.max_wait_minutes - 1)
    assert "duty-timeout-1" not in handoff.overdue_waits(session, policy, just_before)
    late = MONDAY_10 + timedelta(minutes=policy.handoff.max_wait_minutes)
    assert "duty-timeout-1" in handoff.overdue_waits(session, policy, late)
    told = handoff.time_out(session, "duty-timeout-1", policy, late)
    assert told is not None and told.kind == "timed_out"
    assert told.callback_slots == ()  # a number only typed in web chat is never called back
    session.refresh(conv)
    assert conv.mode == "bot"
    [item] = [i for i in handoff.queue(session) if i.conversation_id == "duty-timeout-1"]
    assert item.status == "waiting"  # still for agents
    assert handoff.time_out(session, "duty-timeout-1", policy, late) is None  # told once
    handoff.claim(session, "duty-timeout-1", "duty-on-2", at=late + timedelta(minutes=5))
    session.flush()
    session.refresh(conv)
    assert conv.mode == "human"


def test_a_callback_is_kept_on_the_ticket_only_within_hours_and_contact_rules(session: Session, policy: Policy) -> None:
    conv = _holder(session, "duty-callback-1")
    conversations.claim_phone(session, conv, "13912340000")
    with pytest.raises(ValidationFailed):  # a number only typed, never proven, is not called
        handoff.leave_callback(
            session, conv, duty.callback_slots(policy.handoff, policy.contact, MONDAY_22)[0], policy, MONDAY_22
        )
    conv.verified_at = MONDAY_22
    handoff.request_person(session, conv, "requested", 2, "", policy, MONDAY_22)
    with pytest.raises(ValidationFailed):
        handoff.leave_callback(session, conv, MONDAY_22 + timedelta(minutes=30), policy, MONDAY_22)
    slot = duty.callback_slots(policy.handoff, policy.contact, MONDAY_22)[0]
    handoff.leave_callback(session, conv, slot, policy, MONDAY_22)
    [item] = [i for i in handoff.queue(session) if i.conversation_id == "duty-callback-1"]
    assert item.callback_at == slot
    assert duty.callback_kept(slot, slot + timedelta(minutes=10), policy.handoff)
    assert not duty.callback_kept(slot, None, policy.handoff)


def test_on_claim_the_agent_reads_what_was_asked_offered_refused_and_the_situation(
    session: Session, policy: Policy
) -> None:
    conv = _holder(session, "duty-summary-1")
    for text, intent in (("我欠多少", "ask_debt_amount"), ("我失业了还不上", "hardship"), ("不要", "deny")):
        msg = conversations.append_message(session, conv, "user", text, intent=intent)
        assert isinstance(msg, Message)
    handoff.request_person(session, conv, "requested", 2, "", policy, MONDAY_22)
    summary = handoff.claim_summary(session, "duty-summary-1")
    assert summary.asked == ["欠款金额", "困难"]
    assert summary.refused == ["不要"] and summary.situation == ["我失业了还不上"]
    ticket = session.query(HandoffTicket).filter_by(conversation_pk=conv.id).one()
    assert ticket.status == "waiting"


def test_no_callback_is_offered_or_kept_for_a_number_that_opted_out_of_calls(session: Session, policy: Policy) -> None:
    phone = "13912345678"
    account = accounts.upsert_account(session, record(phone=phone))
    conduct.set_preference(session, account.cardholder_id, "calls", "opted_out", Clock.at(MONDAY_22), "test")
    conv = _holder(session, "duty-nocall-1")
    conversations.claim_phone(session, conv, phone)
    conv.verified_at, conv.account_pk = MONDAY_22, account.id
    decision = handoff.request_person(session, conv, "requested", 2, "", policy, MONDAY_22)
    assert decision.kind == "off_duty" and decision.callback_slots == ()
    slot = duty.callback_slots(policy.handoff, policy.contact, MONDAY_22)[0]
    with pytest.raises(ValidationFailed):
        handoff.leave_callback(session, conv, slot, policy, MONDAY_22)


def test_a_typed_callback_time_falls_on_the_day_said_or_the_next_time_that_hour_comes() -> None:
    four_pm = MONDAY_10.replace(hour=16)
    assert duty.typed_callback(MONDAY_10, "15:00", None) == MONDAY_10.replace(hour=15)  # later today
    assert duty.typed_callback(four_pm, "15:00", None) == MONDAY_10.replace(hour=15) + timedelta(days=1)  # passed
    friday = MONDAY_10.date() + timedelta(days=4)
    assert duty.typed_callback(four_pm, "14:30", friday) == datetime.combine(friday, time(14, 30), tzinfo=TZ)
    assert duty.typed_callback(MONDAY_10, "下午", None) is None
