"""Campaign selection and the decision stored for every account, with its reason."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import accounts, conduct, negotiation
from ledger.campaigns import Segment, create_campaign
from ledger.clock import Clock
from ledger.models import ContactAttempt
from ledger.policy import Policy
from tests.conftest import TZ
from tests.factories import record


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
    ok, opted, held, planned, promised, current = (record() for _ in range(6))
    current = record(account_id=current.account_id, due_date=date(2026, 4, 20), statement_date=date(2026, 3, 30))
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
    rec = record()
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
    rec = record()
    accounts.upsert_account(session, rec)
    first = create_campaign(session, "a", Segment(("M1",)), "reminder", None, policy.contact, clock)
    second = create_campaign(session, "b", Segment(("M1",)), "reminder", None, policy.contact, clock)
    assert _attempts(session, first.campaign.id, [rec.account_id])[rec.account_id] == ("queued", "ok")
    assert _attempts(session, second.campaign.id, [rec.account_id])[rec.account_id] == ("skipped", "frequency_cap")


def test_segment_by_overdue_days(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()  # 11 days overdue on 5 April
    accounts.upsert_account(session, rec)
    narrow = create_campaign(session, "n", Segment((), 20, 40), "reminder", None, policy.contact, clock)
    assert _attempts(session, narrow.campaign.id, [rec.account_id])[rec.account_id][0] == "not_selected"
