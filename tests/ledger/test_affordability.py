"""Offers sized to the holder (ledger/affordability.py): a monthly figure, a number of periods, two parts.

Situations as in test_proposals.py: 10,000 yuan owed, 3,000 clearing the overdue; policy.yml's buckets.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy.orm import Session

from ledger import accounts, affordability, negotiation
from ledger.clock import Clock
from ledger.models import Promise
from ledger.plans import Owed
from ledger.policy import Policy
from tests.conftest import TZ
from tests.factories import record

TODAY = date(2026, 4, 5)


def situation(policy: Policy, bucket: str = "M2", owed: int = 1_000_000, due: int = 300_000) -> negotiation.Situation:
    return negotiation.Situation(
        bucket, policy.for_bucket(bucket), due, owed, due, False, owed=Owed(owed), agreements=policy.agreements
    )


def largest(offer: object) -> int:
    return max(r.amount for r in offer.schedule)  # type: ignore[attr-defined]


def test_a_monthly_figure_gets_the_plan_closest_below_it(policy: Policy) -> None:
    # M2 allows instalments of 3/6/12/24 periods and a personalised plan up to 60 (0.5 % a period).
    p = affordability.size_to_monthly(situation(policy), TODAY, 120_000)
    assert p.outcome == "personalized" and p.offer is not None
    assert largest(p.offer) <= 120_000
    # the next shorter personalised plan would ask more than 1,200 a month
    assert p.offer.periods == 9 and p.offer.apr > 0
    every = [o for o in negotiation.installment_offers(situation(policy), TODAY) if largest(o) <= 120_000]
    assert all(largest(o) < largest(p.offer) for o in every)


def test_where_only_standard_instalments_exist_the_closest_fitting_one_is_offered(policy: Policy) -> None:
    # M1: no personalised plan; 12 periods at 0.6 % ask 893.34 a month, 6 periods 1,736.67.
    p = affordability.size_to_monthly(situation(policy, "M1"), TODAY, 120_000)
    assert p.outcome == "installment" and p.offer is not None and p.offer.periods == 12
    assert p.offer.apr > 0


def test_too_little_names_the_smallest_instalment_and_leaves_it_to_a_person(policy: Policy) -> None:
    p = affordability.size_to_monthly(situation(policy, "M1"), TODAY, 50_000)
    assert p.outcome == "too_little" and p.offer is None
    assert p.max_periods == 12 and p.min_monthly == largest(
        negotiation.installment_offers(situation(policy, "M1"), TODAY)[-1]
    )
    m2 = affordability.size_to_monthly(situation(policy), TODAY, 10_000)
    assert m2.outcome == "too_little" and m2.max_periods == 60 and m2.min_monthly > 10_000


def test_a_figure_that_clears_everything_needs_no_plan(policy: Policy) -> None:
    p = affordability.size_to_monthly(situation(policy, owed=100_000, due=100_000), TODAY, 120_000)
    assert p.outcome == "clears_now" and p.outstanding == 100_000 and p.offer is None


def test_sixty_periods_on_an_m4_account_is_a_personalised_plan(policy: Policy) -> None:
    p = affordability.plan_for_periods(situation(policy, "M4"), TODAY, 60)
    assert p.outcome == "personalized" and p.offer is not None
    assert p.offer.periods == 60 and p.offer.needs_approval and p.offer.apr > 0
    standard = affordability.plan_for_periods(situation(policy, "M4"), TODAY, 36)
    assert standard.outcome == "installment" and standard.offer is not None and standard.offer.periods == 36
    # M1 has no personalised plan: the nearest standard one
    m1 = affordability.plan_for_periods(situation(policy, "M1"), TODAY, 60)
    assert m1.outcome == "nearest" and m1.offer is not None and m1.offer.periods == 12


def test_two_parts_are_the_first_payment_and_the_rest_of_what_clears_the_overdue(policy: Policy) -> None:
    sit = situation(policy)
    p = affordability.propose_two_part(sit, TODAY, 50_000, TODAY, TODAY + timedelta(days=5))
    assert p.outcome == "ok"
    assert [(x.amount, x.due) for x in p.parts] == [(50_000, TODAY), (250_000, TODAY + timedelta(days=5))]
    assert affordability.propose_two_part(sit, TODAY, 300_000, TODAY, TODAY + timedelta(days=5)).outcome == (
        "one_is_enough"
    )
    late = affordability.propose_two_part(sit, TODAY, 50_000, TODAY, TODAY + timedelta(days=40))
    assert late.outcome == "too_late" and late.latest == TODAY + timedelta(days=15)
    assert affordability.propose_two_part(sit, TODAY, 50_000, TODAY + timedelta(days=5), TODAY).outcome == "order"


def test_several_open_promises_are_each_kept_by_their_own_money(session: Session, policy: Policy, clock: Clock) -> None:
    """ "先还500，剩下的10号还清": the 500 keeps the first promise only; the second needs money beyond it."""
    rec = record()
    accounts.upsert_account(session, rec)
    today = clock.today()
    one, two = negotiation.create_promises(
        session,
        rec.account_id,
        [(50_000, today), (30_000, today + timedelta(days=5))],
        "chat",
        f"two-{rec.account_id}",
        policy,
        clock,
    )
    assert negotiation.promised_unpaid(session, rec.account_id) == 80_000
    when = datetime(today.year, today.month, today.day, 9, tzinfo=TZ)
    accounts.post_payment(session, rec.account_id, 50_000, when, "first", policy, clock)
    view = accounts.account_view(session, rec.account_id, policy, clock)
    statuses = {p.promise_id: s for p, s in view.promises}
    assert statuses == {one.promise_id: "kept", two.promise_id: "open"}
    later = Clock.at(datetime.combine(today + timedelta(days=6), datetime.min.time(), tzinfo=TZ).replace(hour=10))
    view = accounts.account_view(session, rec.account_id, policy, later)
    assert {p.promise_id: s for p, s in view.promises}[two.promise_id] == "broken"  # the 500 did not keep it
    # both open promises are listed with their own amount and date
    assert sorted((p.amount, p.due_date) for p in session.query(Promise).filter_by(account_pk=one.account_pk)) == [
        (30_000, today + timedelta(days=5)),
        (50_000, today),
    ]
