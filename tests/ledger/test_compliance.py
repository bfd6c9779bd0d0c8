"""Every outbound contact against the conduct rules: one decision, for the person, at send time."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from ledger import accounts, conduct
from ledger.clock import Clock
from ledger.compliance import ContactFacts, decide, decide_contact, in_window, record_contact
from ledger.policy import Policy
from tests.factories import record

SH = ZoneInfo("Asia/Shanghai")
CLEAR = ContactFacts()


def at(h: int, m: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 12, day, h, m, tzinfo=SH)


def phone() -> str:
    return f"138{uuid.uuid4().int % 10**8:08d}"


def test_inside_the_window_sends_now(policy: Policy) -> None:
    d = decide(CLEAR, at(10), policy.contact)
    assert (d.outcome, d.send_at) == ("send", at(10))


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (at(7, 59), at(8)),
        (at(21), at(8, day=11)),
        (at(23, 30), at(8, day=11)),
        (at(0, 5), at(8)),
    ],
)
def test_quiet_hours_are_deferred_to_the_next_window(policy: Policy, wanted: datetime, expected: datetime) -> None:
    d = decide(CLEAR, wanted, policy.contact)
    assert (d.outcome, d.reason, d.send_at) == ("defer", "quiet_hours", expected)


def test_the_holders_local_time_decides(policy: Policy) -> None:
    urumqi = replace(CLEAR, timezone="Asia/Urumqi")  # UTC+6: 09:30 in Shanghai is 07:30 there
    d = decide(urumqi, at(9, 30), policy.contact)
    assert d.outcome == "defer" and d.send_at is not None and d.send_at.hour == 8


@pytest.mark.parametrize(
    ("facts", "reason"),
    [
        (replace(CLEAR, holds=frozenset({"dispute"})), "hold"),
        (replace(CLEAR, holds=frozenset({"deceased"})), "hold"),
        (replace(CLEAR, opted_out=True), "opted_out"),
        (replace(CLEAR, number_suppressed=True), "number_suppressed"),
        (replace(CLEAR, has_arrangement=True), "arrangement"),
        (replace(CLEAR, paid_since_selection=True), "paid"),
        (replace(CLEAR, hardship_until=date(2026, 12, 20)), "hardship"),
        (replace(CLEAR, contacts=(at(9),)), "frequency_cap"),
        (replace(CLEAR, contacts=(at(9, day=5), at(9, day=7), at(9, day=8))), "frequency_cap"),
    ],
)
def test_skips_name_their_reason(policy: Policy, facts: ContactFacts, reason: str) -> None:
    d = decide(facts, at(10), policy.contact)
    assert (d.outcome, d.reason, d.send_at) == ("skip", reason, None)


def test_the_cap_is_counted_on_the_day_the_message_actually_goes(policy: Policy) -> None:
    # One SMS already planned for 08:00 tomorrow: a request at 23:30 tonight would go then too.
    planned = replace(CLEAR, contacts=(at(8, day=11),))
    assert decide(planned, at(23, 30), policy.contact).reason == "frequency_cap"
    # Sent at 10:00 today: a request at 23:30 goes tomorrow morning, a different day.
    sent_today = replace(CLEAR, contacts=(at(10),))
    assert decide(sent_today, at(23, 30), policy.contact).outcome == "defer"


def test_the_week_counts_the_seven_days_ending_on_the_send_day(policy: Policy) -> None:
    old = replace(CLEAR, contacts=(at(9, day=2), at(9, day=3), at(9, day=4)))  # 6-8 days before the 10th
    assert decide(old, at(10), policy.contact).outcome == "send"


def test_hardship_pauses_reminders_through_its_last_day_only(policy: Policy) -> None:
    paused = replace(CLEAR, hardship_until=date(2026, 12, 10))
    assert decide(paused, at(10), policy.contact).reason == "hardship"
    assert decide(paused, at(10, day=11), policy.contact).outcome == "send"
    assert decide(paused, at(10), policy.contact, "agent").outcome == "send"  # a person may still talk


def test_a_reply_to_the_persons_own_message_is_not_a_contact_attempt(policy: Policy) -> None:
    wrote = replace(CLEAR, opted_out=True, contacts=(at(9),), last_inbound_at=at(23, 0))
    assert decide(wrote, at(23, 1), policy.contact, "reply").reason == "reply"
    # An agent's answer is not a contact attempt either, but it waits for the window (issue 30).
    assert decide(wrote, at(23, 1), policy.contact, "agent").outcome == "defer"
    daytime = replace(wrote, last_inbound_at=at(11, 0))
    assert decide(daytime, at(11, 1), policy.contact, "agent") == decide(daytime, at(11, 1), policy.contact, "reply")
    # Hours later it is a contact again: opted out here.
    assert decide(wrote, at(23, 0, day=11), policy.contact, "agent").reason == "opted_out"
    # A campaign is never a reply.
    assert decide(wrote, at(23, 1), policy.contact, "campaign").reason == "opted_out"


def test_arrangements_and_payments_stop_reminders_not_an_agent(policy: Policy) -> None:
    facts = replace(CLEAR, has_arrangement=True, paid_since_selection=True)
    assert decide(facts, at(10), policy.contact, "campaign").reason == "arrangement"
    assert decide(facts, at(10), policy.contact, "agent").outcome == "send"
    assert decide(facts, at(10), policy.contact, "notice").outcome == "send"


@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(SH)))
def test_nothing_is_ever_sent_outside_the_window(policy: Policy, wanted: datetime) -> None:
    d = decide(CLEAR, wanted, policy.contact)
    assert d.send_at is not None and d.send_at >= wanted and in_window(d.send_at, "Asia/Shanghai", policy.contact)
    assert time(8) <= d.send_at.timetz().replace(tzinfo=None) < time(22)


# --- decide_contact: the facts read from the ledger, per person ---------------------------------


def test_an_opt_out_on_one_card_covers_every_card_of_that_phone(session: Session, policy: Policy) -> None:
    clock = Clock.at(at(10))
    number = phone()
    first, second = record(phone=number), record(phone=number)
    accounts.upsert_account(session, first)
    accounts.upsert_account(session, second)
    holder = conduct.cardholder_of(session, first.account_id)
    conduct.set_preference(session, holder, "sms", "opted_out", clock, actor="conv-1")
    for rec in (first, second):
        pk = conduct.account_pk(session, rec.account_id)
        d = decide_contact(
            session, phone=number, account_pk=pk, channel="sms", purpose="campaign", at=at(10), rules=policy.contact
        )
        assert d.reason == "opted_out"
    # Calls were not asked about: still allowed.
    pk = conduct.account_pk(session, second.account_id)
    d = decide_contact(
        session, phone=number, account_pk=pk, channel="call", purpose="agent", at=at(10), rules=policy.contact
    )
    assert d.outcome == "send"
    view = accounts.account_view(session, second.account_id, policy, clock)
    assert view.preferences["sms"][0] == "opted_out" and view.preferences["calls"][0] == "allowed"


def test_a_card_imported_later_keeps_the_persons_opt_out(session: Session, policy: Policy) -> None:
    clock = Clock.at(at(10))
    number = phone()
    first = record(phone=number)
    accounts.upsert_account(session, first)
    conduct.set_preference(session, conduct.cardholder_of(session, first.account_id), "sms", "opted_out", clock, "c")
    later = record(phone=number)
    accounts.upsert_account(session, later)
    assert accounts.account_view(session, later.account_id, policy, clock).preferences["sms"][0] == "opted_out"


def test_an_agent_message_counts_against_the_persons_cap(session: Session, policy: Policy) -> None:
    number = phone()
    rec = record(phone=number)
    accounts.upsert_account(session, rec)
    pk = conduct.account_pk(session, rec.account_id)
    first = decide_contact(
        session, phone=number, account_pk=pk, channel="sms", purpose="agent", at=at(10), rules=policy.contact
    )
    assert first.outcome == "send"
    record_contact(session, phone=number, account_pk=pk, channel="sms", purpose="agent", decision=first, at=at(10))
    again = decide_contact(
        session, phone=number, account_pk=pk, channel="wechat", purpose="campaign", at=at(15), rules=policy.contact
    )
    assert again.reason == "frequency_cap"  # SMS and WeChat share one cap per person


def test_a_wrong_number_report_silences_that_number_for_that_account_only(session: Session, policy: Policy) -> None:
    clock = Clock.at(at(10))
    number = phone()
    rec = record(phone=number)
    accounts.upsert_account(session, rec)
    pk = conduct.account_pk(session, rec.account_id)
    conduct.suppress_number(session, number, "all", "wrong_number", clock, "sms-x", account_pk=pk)

    def ask(account_pk: int | None) -> str:
        return decide_contact(
            session,
            phone=number,
            account_pk=account_pk,
            channel="sms",
            purpose="agent",
            at=at(10),
            rules=policy.contact,
        ).reason

    assert ask(pk) == "number_suppressed"
    assert ask(None) == "ok"


def test_the_import_time_zone_sets_the_window(session: Session, policy: Policy) -> None:
    number = phone()
    rec = record(phone=number, timezone="Asia/Urumqi")
    accounts.upsert_account(session, rec)
    pk = conduct.account_pk(session, rec.account_id)
    d = decide_contact(
        session, phone=number, account_pk=pk, channel="sms", purpose="campaign", at=at(9, 30), rules=policy.contact
    )
    assert d.outcome == "defer" and d.send_at == datetime(2026, 12, 10, 8, 0, tzinfo=ZoneInfo("Asia/Urumqi"))
    assert d.send_at - at(9, 30) == timedelta(minutes=30)


@given(
    st.lists(
        st.datetimes(min_value=datetime(2026, 12, 1), max_value=datetime(2026, 12, 20), timezones=st.just(SH)),
        max_size=25,
    )
)
def test_whatever_campaigns_ask_the_person_never_exceeds_the_caps(policy: Policy, asks: list[datetime]) -> None:
    """Every request decided against what is already planned: per local day and per 7 days, the caps hold."""
    planned: list[datetime] = []
    for wanted in asks:  # in any order: a campaign for next week can be made before one for tomorrow
        d = decide(replace(CLEAR, contacts=tuple(planned)), wanted, policy.contact)
        if d.outcome != "skip":
            assert d.send_at is not None and in_window(d.send_at, "Asia/Shanghai", policy.contact)
            planned.append(d.send_at)
    days = sorted(p.date() for p in planned)
    for day in set(days):
        assert days.count(day) <= policy.contact.sms_per_day
        assert sum(1 for d in days if day - timedelta(days=6) <= d <= day) <= policy.contact.sms_per_7_days
