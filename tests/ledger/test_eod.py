"""The end-of-day runner over the database: idempotent, and one run catches up after downtime."""

from __future__ import annotations

from datetime import date, datetime

from ledger import accounts, eod, negotiation
from ledger.clock import Clock
from ledger.db import Database
from ledger.models import Plan
from ledger.policy import Policy
from tests.conftest import TZ
from tests.factories import record


def test_one_run_after_downtime_catches_up_and_a_second_changes_nothing(db: Database, policy: Policy) -> None:
    agreed = Clock.at(datetime(2026, 4, 5, 10, tzinfo=TZ))
    rec = record()
    with db.transaction() as s:
        accounts.upsert_account(s, rec)
        sit = negotiation.situation(s, rec.account_id, policy, agreed)
        offer = negotiation.offer_for(sit, "installment", agreed.today(), periods=3)
        plan, _ = negotiation.create_plan(s, rec.account_id, offer, "api", f"eod-{rec.account_id}", agreed)
        plan_id = plan.plan_id
    # No run since the plan was agreed; on 1 Aug every row is long past its date.
    later = Clock.at(datetime(2026, 8, 1, 1, 0, tzinfo=TZ))
    first = eod.run_eod(db, policy, later, chunk=2)
    assert plan_id in first.broken_plan_ids and eod.ran_today(db, later)
    with db.transaction(readonly=True) as s:
        stored = s.query(Plan).filter_by(plan_id=plan_id).one()
        # Broken when the second row was missed (5 Jun + 3 grace days), as a daily run would have found.
        assert (stored.status, stored.ended_on, stored.open_slot) == ("broken", date(2026, 6, 9), None)
        assert [r.status for r in stored.rows] == ["missed", "missed", "missed"]
    second = eod.run_eod(db, policy, later)
    assert plan_id not in second.broken_plan_ids
