"""Campaign selection and the decision stored for every account, with its reason."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import accounts, conduct, negotiation
from ledger.campaigns import Segment, create_campaign, decide_at_send_time
from ledger.clock import Clock
from ledger.models import ContactAttempt
from ledger.policy import Policy
from tests.conftest import TZ
from tests.factories import record


def phone() -> str:
    return f"139{uuid.uuid4().int % 10**8:08d}"


def _attempt(session: Session, campaign_pk: int, account_id: str) -> ContactAttempt:
    pk = conduct.account_pk(session, account_id)
    row = session.scalar(
        select(ContactAttempt).where(ContactAttempt.campaign_pk == campaign_pk, ContactAttempt.account_pk == pk)
    )
    assert row is not None
    return row


def _attempts(session: Session, campaign_pk: int, account_ids: list[str]) -> dict[str, tuple[str, str]]:
    out = {}
    for account_id in account_ids:
        pk = conduct.account_pk(session, account_id)
        row = session.scalar(
            select(ContactAttempt).where(ContactAttempt.campaign_pk == campaign_pk, ContactAttempt.account_pk == pk)
        )
        out[account_id] = (row.status, row.reason) if row else ("not_selected", "")
    return out


def test_every_rule_is_applied_and_recorded(session: Session, policy: Policy, clock: Clock) -> None:
    # One phone each: opt-outs and caps belong to the person (the phone), not to the card.
    ok, opted, held, planned, promised, current = (record(phone=phone()) for _ in range(6))
    current = record(
        account_id=current.account_id, phone=current.phone, due_date=date(2026, 4, 20), statement_date=date(2026, 3, 30)
    )
    for rec in (ok, opted, held, planned, promised, current):
        accounts.upsert_account(session, rec)
    conduct.set_preference(session, conduct.cardholder_of(session, opted.account_id), "sms", "opted_out", clock, "test")
    conduct.place_hold(session, held.account_id, "dispute", "盗刷", "test")
    sit = negotiation.situation(session, planned.account_id, policy, clock)
    negotiation.create_plan(
        session,
        planned.account_id,
        negotiation.offer_for(sit, "installment", clock.today(), 3),
        "chat",
        f"k-{planned.account_id}",
        clock,
    )
    negotiation.create_promise(
        session,
        promised.account_id,
        10_000,
        clock.today() + timedelta(days=3),
        "chat",
        f"p-{promised.account_id}",
        policy,
        clock,
    )
    result = create_campaign(session, "t", Segment(("M1",)), "reminder", None, policy.contact, clock)
    got = _attempts(session, result.campaign.id, [r.account_id for r in (ok, opted, held, planned, promised, current)])
    assert got == {
        ok.account_id: ("queued", "ok"),
        opted.account_id: ("skipped", "opted_out"),
        held.account_id: ("skipped", "hold"),
        planned.account_id: ("skipped", "arrangement"),
        promised.account_id: ("skipped", "arrangement"),
        current.account_id: ("not_selected", ""),
    }
    assert result.selected == result.queued + sum(v for k, v in result.skipped.items() if k != "quiet_hours")


def test_quiet_hours_are_deferred_and_counted(session: Session, policy: Policy) -> None:
    rec = record(phone=phone())
    accounts.upsert_account(session, rec)
    night = Clock.at(datetime(2026, 4, 5, 22, 30, tzinfo=TZ))
    result = create_campaign(session, "night", Segment(("M1",)), "reminder", None, policy.contact, night)
    pk = conduct.account_pk(session, rec.account_id)
    row = session.scalar(
        select(ContactAttempt).where(ContactAttempt.campaign_pk == result.campaign.id, ContactAttempt.account_pk == pk)
    )
    assert row is not None and (row.status, row.reason) == ("queued", "quiet_hours")
    assert row.scheduled_at == datetime(2026, 4, 6, 8, 0, tzinfo=TZ)
    assert result.skipped["quiet_hours"] >= 1


def test_a_second_campaign_the_same_day_hits_the_cap(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record(phone=phone())
    accounts.upsert_account(session, rec)
    first = create_campaign(session, "a", Segment(("M1",)), "reminder", None, policy.contact, clock)
    second = create_campaign(session, "b", Segment(("M1",)), "reminder", None, policy.contact, clock)
    assert _attempts(session, first.campaign.id, [rec.account_id])[rec.account_id] == ("queued", "ok")
    assert _attempts(session, second.campaign.id, [rec.account_id])[rec.account_id] == ("skipped", "frequency_cap")


def test_segment_by_overdue_days(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record(phone=phone())  # 11 days overdue on 5 April
    accounts.upsert_account(session, rec)
    narrow = create_campaign(session, "n", Segment((), 20, 40), "reminder", None, policy.contact, clock)
    assert _attempts(session, narrow.campaign.id, [rec.account_id])[rec.account_id][0] == "not_selected"


def test_both_cards_of_one_phone_respect_one_opt_out_and_one_cap(
    session: Session, policy: Policy, clock: Clock
) -> None:
    number = phone()
    first, second = record(phone=number), record(phone=number)
    accounts.upsert_account(session, first)
    accounts.upsert_account(session, second)
    one = create_campaign(session, "both", Segment(("M1",)), "reminder", None, policy.contact, clock)
    got = sorted(_attempts(session, one.campaign.id, [first.account_id, second.account_id]).values())
    assert got == [("queued", "ok"), ("skipped", "frequency_cap")]  # one SMS to the person, not one per card
    # The person opts out while talking about one card: neither card's reminder goes the next day.
    conduct.set_preference(session, conduct.cardholder_of(session, second.account_id), "sms", "opted_out", clock, "c")
    next_day = Clock.at(clock.now() + timedelta(days=1))
    two = create_campaign(session, "later", Segment(("M1",)), "reminder", None, policy.contact, next_day)
    got = _attempts(session, two.campaign.id, [first.account_id, second.account_id])
    assert set(got.values()) == {("skipped", "opted_out")}


def test_two_campaigns_around_midnight_give_one_sms(session: Session, policy: Policy) -> None:
    rec = record(phone=phone())
    accounts.upsert_account(session, rec)
    evening = Clock.at(datetime(2026, 4, 5, 21, 30, tzinfo=TZ))
    late = Clock.at(datetime(2026, 4, 5, 23, 30, tzinfo=TZ))
    a = create_campaign(session, "21:30", Segment(("M1",)), "reminder", None, policy.contact, evening)
    b = create_campaign(session, "23:30", Segment(("M1",)), "reminder", None, policy.contact, late)
    first, second = _attempt(session, a.campaign.id, rec.account_id), _attempt(session, b.campaign.id, rec.account_id)
    assert (first.status, first.reason, first.scheduled_at) == (
        "queued",
        "quiet_hours",
        datetime(2026, 4, 6, 8, 0, tzinfo=TZ),
    )
    assert (second.status, second.reason) == ("skipped", "frequency_cap")  # both would have gone at 08:00


def test_what_changed_since_selection_is_decided_again_at_send_time(session: Session, policy: Policy) -> None:
    ten = Clock.at(datetime(2026, 4, 5, 10, 0, tzinfo=TZ))
    paid, planned, opted, held, fine = (record(phone=phone()) for _ in range(5))
    for rec in (paid, planned, opted, held, fine):
        accounts.upsert_account(session, rec)
    at_night = datetime(2026, 4, 5, 20, 0, tzinfo=TZ)
    made = create_campaign(session, "c", Segment(("M1",)), "reminder", at_night, policy.contact, ten)
    # Between selection (10:00) and sending (20:00):
    noon = Clock.at(ten.now() + timedelta(hours=2))
    accounts.post_payment(session, paid.account_id, 50_000, noon.now(), "r-1", policy, noon)
    sit = negotiation.situation(session, planned.account_id, policy, ten)
    negotiation.create_plan(
        session, planned.account_id, negotiation.offer_for(sit, "installment", ten.today(), 3), "chat", "k", ten
    )
    conduct.set_preference(session, conduct.cardholder_of(session, opted.account_id), "sms", "opted_out", ten, "c")
    conduct.place_hold(session, held.account_id, "deceased", "reported", "agent")
    outcomes = {}
    for rec in (paid, planned, opted, held, fine):
        attempt = _attempt(session, made.campaign.id, rec.account_id)
        decision = decide_at_send_time(session, attempt, at_night, policy.contact)
        outcomes[rec.account_id] = (decision.outcome, attempt.status, attempt.reason)
    assert outcomes == {
        paid.account_id: ("skip", "skipped", "paid"),
        planned.account_id: ("skip", "skipped", "arrangement"),
        opted.account_id: ("skip", "skipped", "opted_out"),
        held.account_id: ("skip", "skipped", "hold"),
        fine.account_id: ("send", "queued", "ok"),
    }


def test_a_hardship_pauses_the_persons_reminders(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record(phone=phone())
    accounts.upsert_account(session, rec)
    conduct.record_hardship(
        session, rec.account_id, "illness", "住院了", policy.contact.hardship_pause_days, clock, "c"
    )
    made = create_campaign(session, "h", Segment(("M1",)), "reminder", None, policy.contact, clock)
    assert _attempts(session, made.campaign.id, [rec.account_id])[rec.account_id] == ("skipped", "hardship")
    after = Clock.at(clock.now() + timedelta(days=policy.contact.hardship_pause_days + 1))
    made = create_campaign(session, "h2", Segment(("M1", "M2")), "reminder", None, policy.contact, after)
    assert _attempts(session, made.campaign.id, [rec.account_id])[rec.account_id] == ("queued", "ok")
