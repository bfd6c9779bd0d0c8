"""Accounts, payments, plans and promises through the persistence layer, on a real database."""

from __future__ import annotations

import threading
import uuid
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ledger import accounts, negotiation
from ledger.clock import Clock
from ledger.db import transaction
from ledger.errors import Conflict, NotFound, OfferNotAllowed, ValidationFailed
from ledger.models import Hold, Plan
from ledger.policy import Policy
from tests.conftest import TZ
from tests.factories import record


def test_import_then_view(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    view = accounts.account_view(session, rec.account_id, policy, clock)
    # Statement 5 Mar, due 25 Mar, today 5 Apr: 32 days of interest through today on 10,000 yuan.
    assert view.position.overdue_days == 11
    assert view.position.amount_due.interest == 1_000_000 * 5 * 32 // 10_000
    assert view.position.amount_due.late_fee == 5_000
    assert view.preferences["third_party"][0] == "forbidden"


def test_replace_keeps_one_statement_and_syncs_flags(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record(flags=("dispute",))
    accounts.upsert_account(session, rec)
    accounts.upsert_account(session, record(account_id=rec.account_id, statement_balance=500_000, flags=()))
    view = accounts.account_view(session, rec.account_id, policy, clock)
    assert view.statement.statement_balance == 500_000 and len(view.account.statements) == 1
    assert view.flags == []
    assert session.scalar(select(func.count()).select_from(Hold).where(Hold.account_pk == view.account.id)) == 1


def test_bad_import_is_refused(session: Session) -> None:
    with pytest.raises(ValidationFailed):
        accounts.upsert_account(session, record(minimum_payment=2_000_000))
    with pytest.raises(ValidationFailed):
        accounts.upsert_account(session, record(due_date=date(2026, 3, 1)))


def test_payment_is_idempotent_on_reference(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    paid_at = datetime(2026, 4, 5, 9, 0, tzinfo=TZ)
    before = accounts.account_view(session, rec.account_id, policy, clock).position
    _, created = accounts.post_payment(session, rec.account_id, 50_000, paid_at, "ref-1", policy, clock)
    _, again = accounts.post_payment(session, rec.account_id, 50_000, paid_at, "ref-1", policy, clock)
    after = accounts.account_view(session, rec.account_id, policy, clock).position
    assert created and not again
    assert after.outstanding.total == before.outstanding.total - 50_000
    with pytest.raises(NotFound):
        accounts.post_payment(session, "missing", 1, paid_at, "r", policy, clock)


def test_payment_date_is_taken_in_the_app_time_zone(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    # 16:30 UTC on 24 Mar is 00:30 on 25 Mar in Shanghai: on the due date, so the minimum counts.
    paid_at = datetime.fromisoformat("2026-03-24T16:30:00+00:00")
    entry, _ = accounts.post_payment(session, rec.account_id, 100_000, paid_at, "utc-edge", policy, clock)
    assert entry.effective_date == date(2026, 3, 25)
    assert accounts.account_view(session, rec.account_id, policy, clock).position.overdue_days == 0


def test_promise_kept_by_payment(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    promise, _ = negotiation.create_promise(
        session, rec.account_id, 80_000, date(2026, 4, 8), "chat", "k1", policy, clock
    )
    assert promise.status == "open"
    accounts.post_payment(session, rec.account_id, 80_000, datetime(2026, 4, 5, 9, tzinfo=TZ), "p1", policy, clock)
    assert promise.status == "kept"


def test_promise_broken_after_its_date(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    negotiation.create_promise(session, rec.account_id, 80_000, date(2026, 4, 6), "chat", "k2", policy, clock)
    later = Clock.at(datetime(2026, 4, 7, 9, tzinfo=TZ))
    [(_, status)] = accounts.account_view(session, rec.account_id, policy, later).promises
    assert status == "broken"


def test_promise_outside_window_is_refused(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    with pytest.raises(OfferNotAllowed):
        negotiation.create_promise(session, rec.account_id, 80_000, date(2026, 5, 30), "chat", "k3", policy, clock)


def test_plan_creation_is_idempotent_and_one_open_plan(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, clock)
    offer = negotiation.offer_for(sit, "installment", clock.today(), periods=6)
    plan, created = negotiation.create_plan(session, rec.account_id, offer, "chat", "idem-1", clock)
    again, created_again = negotiation.create_plan(session, rec.account_id, offer, "chat", "idem-1", clock)
    assert created and not created_again and again.plan_id == plan.plan_id
    assert sum(r.amount for r in plan.rows) == offer.principal + offer.total_fee == plan.principal + plan.total_fee
    with pytest.raises(Conflict):
        negotiation.create_plan(session, rec.account_id, offer, "chat", "idem-2", clock)


def test_concurrent_plan_creation_makes_one_plan(
    engine: Engine, database_url: str, policy: Policy, clock: Clock
) -> None:
    rec = record()
    with transaction(database_url) as s:
        accounts.upsert_account(s, rec)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def create(key: str) -> None:
        barrier.wait()
        try:
            with transaction(database_url) as s:
                sit = negotiation.situation(s, rec.account_id, policy, clock)
                offer = negotiation.offer_for(sit, "installment", clock.today(), periods=12)
                _, created = negotiation.create_plan(s, rec.account_id, offer, "api", key, clock)
                outcomes.append("created" if created else "existing")
        except Conflict:
            outcomes.append("conflict")

    keys = ["same", "same", f"other-{uuid.uuid4()}", f"other-{uuid.uuid4()}"]
    threads = [threading.Thread(target=create, args=(f"{rec.account_id}-{k}",)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with transaction(database_url) as s:
        account = accounts.get_account(s, rec.account_id)
        plans = s.scalars(select(Plan).where(Plan.account_pk == account.id)).all()
    assert len(plans) == 1
    assert outcomes.count("created") == 1 and len(outcomes) == 4


def test_plan_completes_when_paid(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, clock)
    offer = negotiation.offer_for(sit, "installment", clock.today(), periods=3)
    plan, _ = negotiation.create_plan(session, rec.account_id, offer, "agent", "done-1", clock)
    accounts.post_payment(
        session, rec.account_id, offer.total, datetime(2026, 4, 5, 9, tzinfo=TZ), "all", policy, clock
    )
    assert plan.status == "completed" and plan.open_slot is None


def test_account_on_hold_gets_no_offer(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record(flags=("deceased",))
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, clock)
    with pytest.raises(OfferNotAllowed):
        negotiation.offer_for(sit, "installment", clock.today() + timedelta(days=0), periods=3)
