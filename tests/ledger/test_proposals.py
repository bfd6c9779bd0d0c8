"""What the bot proposes: one outcome per ask, decided in the ledger over the account's situation."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from ledger.agreements import PlanState, RowState
from ledger.fees import annual_interest_rate
from ledger.negotiation import (
    HardshipProposal,
    Situation,
    fee_waiver_route,
    propose_after_hardship,
    propose_deferment,
    propose_installment,
    propose_personalized,
    propose_promise,
)
from ledger.plans import Owed, judge_promise
from ledger.policy import Policy

TODAY = date(2026, 4, 5)


def situation(policy: Policy, bucket: str = "M2", owed: int = 1_000_000, due: int = 300_000, **kw: object) -> Situation:
    return Situation(
        bucket,
        policy.for_bucket(bucket),  # type: ignore[arg-type]
        due,
        owed,
        due,
        bool(kw.get("on_hold", False)),
        owed=Owed(owed),
        agreements=policy.agreements,
    )


def test_installment_lists_every_allowed_offer_or_the_one_asked(policy: Policy) -> None:
    listed = propose_installment(situation(policy), TODAY)
    assert listed.outcome == "options"
    assert [o.periods for o in listed.offers] == [3, 6, 12, 24]
    asked = propose_installment(situation(policy), TODAY, 6)
    assert asked.outcome == "offer" and asked.offer is not None and asked.offer.periods == 6


def test_installment_out_of_policy_gets_the_nearest_allowed(policy: Policy) -> None:
    p = propose_installment(situation(policy), TODAY, 10)
    assert p.outcome == "nearest" and p.requested == 10
    assert p.offer is not None and p.offer.periods == 12
    assert p.allowed_periods == (3, 6, 12, 24)


def test_installment_refusals(policy: Policy) -> None:
    assert propose_installment(situation(policy, on_hold=True), TODAY, 6).outcome == "on_hold"
    assert propose_installment(situation(policy, owed=0, due=0), TODAY).outcome == "settled"


def test_deferment_to_the_day_asked_else_the_latest_allowed(policy: Policy) -> None:
    sit = situation(policy)  # M2: 30 days
    asked = propose_deferment(sit, TODAY, TODAY + timedelta(days=10))
    assert asked.outcome == "offer" and asked.offer is not None
    assert asked.offer.schedule[0].due_date == TODAY + timedelta(days=10)
    unasked = propose_deferment(sit, TODAY)
    assert unasked.outcome == "offer" and unasked.offer is not None
    assert unasked.offer.schedule[0].due_date == TODAY + timedelta(days=30)
    for beyond in (TODAY + timedelta(days=45), TODAY):  # too far, or not after today
        p = propose_deferment(sit, TODAY, beyond)
        assert p.outcome == "nearest" and p.offer is not None
        assert p.offer.schedule[0].due_date == TODAY + timedelta(days=30)


def test_deferment_not_offered(policy: Policy) -> None:
    assert propose_deferment(situation(policy, "M4"), TODAY).outcome == "not_allowed"
    assert propose_deferment(situation(policy, due=0), TODAY).outcome == "not_allowed"
    assert propose_deferment(situation(policy, on_hold=True), TODAY).outcome == "on_hold"


def test_personalized_sized_to_the_monthly_amount(policy: Policy) -> None:
    fits = propose_personalized(situation(policy), TODAY, 100_000)
    assert fits.outcome == "offer" and fits.offer is not None
    assert max(r.amount for r in fits.offer.schedule) <= 100_000
    too_little = propose_personalized(situation(policy), TODAY, 1_000)
    assert too_little.outcome == "too_little" and too_little.max_periods == 60
    assert too_little.min_monthly > 1_000
    assert propose_personalized(situation(policy, "M1"), TODAY, 100_000).outcome == "not_offered"


def test_promise_checked_by_the_rules_the_ledger_writes_with(policy: Policy) -> None:
    sit = situation(policy)  # M2: 15 days
    assert propose_promise(sit, TODAY, None, None).outcome == "need_date"
    assert propose_promise(sit, TODAY, None, None).amount == 300_000  # what clears the overdue
    ok = propose_promise(sit, TODAY, 50_000, TODAY + timedelta(days=3))
    assert (ok.outcome, ok.amount, ok.due) == ("ok", 50_000, TODAY + timedelta(days=3))
    assert propose_promise(sit, TODAY, 50_000, TODAY - timedelta(days=1)).outcome == "past"
    late = propose_promise(sit, TODAY, 50_000, TODAY + timedelta(days=20))
    assert (late.outcome, late.latest) == ("too_late", TODAY + timedelta(days=15))
    much = propose_promise(sit, TODAY, 2_000_000, TODAY)
    assert (much.outcome, much.outstanding) == ("too_much", 1_000_000)
    assert propose_promise(situation(policy, owed=0, due=0), TODAY, None, TODAY).outcome == "settled"


def test_promise_verdict_names_the_date_before_the_amount(policy: Policy) -> None:
    rules = policy.for_bucket("M1")
    assert judge_promise(10_000, TODAY, TODAY, 50_000, rules).ok
    assert judge_promise(0, TODAY, TODAY, 50_000, rules).problem == "not_positive"
    assert judge_promise(60_000, TODAY - timedelta(days=1), TODAY, 50_000, rules).problem == "past"
    assert judge_promise(60_000, TODAY, TODAY, 50_000, rules).problem == "too_much"


def test_annual_rate_is_the_daily_rate_times_365(policy: Policy) -> None:
    fees = policy.fees.model_copy(update={"daily_interest_rate": Decimal("0.0005")})
    assert annual_interest_rate(fees) == Decimal("0.1825")


def test_a_running_plan_counts_what_is_left_and_what_is_in_arrears(policy: Policy) -> None:
    rows = (
        RowState(TODAY, 1000, 1000, "paid", TODAY),
        RowState(TODAY, 1000, 300, "missed", None),
        RowState(TODAY, 1000, 0, "due", None),
    )
    state = PlanState(TODAY, "active", rows, None, 1300, 0, 1700, 700, 4, TODAY, 1000)
    assert (state.paid_periods, state.periods_left, state.missed_periods, state.arrears) == (1, 2, 1, 700)
    assert policy.agreements.misses_that_break == policy.agreements.misses_allowed + 1


def test_after_hardship_a_personalised_plan_where_the_bucket_allows_one(policy: Policy) -> None:
    assert propose_after_hardship(situation(policy, "M2")) == HardshipProposal("personalized", 60)
    assert propose_after_hardship(situation(policy, "M1")).outcome == "options"
    assert propose_after_hardship(situation(policy, "M2", on_hold=True)).outcome == "on_hold"


def test_a_fee_waiver_goes_to_a_person_only_where_waivers_are_allowed(policy: Policy) -> None:
    assert fee_waiver_route(situation(policy, "M4")) == "review"
    assert fee_waiver_route(situation(policy, "M1")) == "no"
