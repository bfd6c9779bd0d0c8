"""Money over random accounts, plans, payments and dates (hypothesis): every fen paid is allocated
or kept as credit, no plan row is below 1 fen, and end-of-day run again changes nothing.

Kept small (few examples, no deadline) so the suite stays quick; see docs/money.md.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from ledger import accounts, eod, negotiation
from ledger.agreements import AgreedRow, AgreementTerms, plan_payments, plan_state
from ledger.clock import Clock
from ledger.errors import OfferNotAllowed
from ledger.fees import AccountTerms, Payment, position
from ledger.plans import Owed, installment_offer, installment_schedule, personalized_offer
from ledger.policy import Policy, load_policy
from tests.conftest import ROOT, TZ
from tests.factories import record

POLICY = load_policy(ROOT / "policy.yml")
START = date(2026, 3, 5)

balances = st.one_of(st.integers(1, 2_000), st.integers(1, 50_000_000))  # tiny ones too (容差, 1-fen rows)
account_terms = st.builds(
    lambda bal, pct, posted, due_in: AccountTerms(
        bal, max(1, bal * pct // 100), START, START + timedelta(days=due_in), START - timedelta(days=posted)
    ),
    balances,
    st.integers(1, 100),
    st.integers(0, 25),
    st.integers(10, 25),
)
payments = st.lists(st.tuples(st.integers(0, 400), st.integers(1, 5_000_000)), max_size=5)


def at(day: date) -> Clock:
    return Clock.at(datetime(day.year, day.month, day.day, 10, tzinfo=TZ))


@settings(max_examples=150, deadline=None)
@given(account_terms, payments, st.integers(0, 500), st.sampled_from(["full_balance", "unpaid_only"]))
def test_every_fen_paid_is_allocated_or_kept_as_credit(
    terms: AccountTerms, pays: list[tuple[int, int]], days: int, mode: str
) -> None:
    fees = POLICY.fees.model_copy(update={"interest_mode": mode})
    today = START + timedelta(days=days)
    history = [Payment(START + timedelta(days=min(d, days)), a) for d, a in pays]
    pos = position(terms, history, today, fees)
    allocated = sum(fee + interest + principal for _, fee, interest, principal in pos.allocations)
    assert allocated + pos.credit == pos.paid_total == sum(a for _, a in pays)
    assert terms.statement_balance - pos.outstanding.principal == sum(p for *_, p in pos.allocations)
    assert min(pos.outstanding.principal, pos.outstanding.interest, pos.outstanding.late_fee, pos.credit) >= 0
    if pos.credit:  # credit only once everything owed is paid
        assert pos.outstanding.total == 0


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.integers(1, 100), st.integers(1, 10_000_000)), st.integers(0, 3_000), st.integers(0, 3_000))
def test_no_offered_row_is_below_one_fen(principal: int, interest: int, late: int) -> None:
    owed = Owed(principal, interest, late)
    today = date(2026, 4, 5)
    for bucket in ("M1", "M3", "M4"):
        rules = POLICY.for_bucket(bucket)
        offers = []
        for periods in (*sorted(rules.installment_fee_rates), 1, 24, 60):
            for make in (installment_offer, personalized_offer):
                try:
                    offers.append(make(owed, periods, rules, today))
                except OfferNotAllowed as refused:
                    nearest = refused.details.get("nearest")
                    assert nearest is None or nearest <= max(owed.total, 1) or "not offered" in refused.message
        for offer in offers:
            assert all(row.amount >= 1 for row in offer.schedule)
            assert sum(row.amount for row in offer.schedule) == offer.total


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 5_000_000),
    st.integers(1, 24),
    payments,
    st.integers(0, 800),
    st.integers(0, 200_000),
)
def test_a_plans_payments_are_all_on_its_rows_or_credit(
    principal: int, periods: int, pays: list[tuple[int, int]], days: int, paid_before: int
) -> None:
    periods = min(periods, principal)
    start = date(2026, 4, 5)
    _, rows = installment_schedule(principal, periods, Decimal("0.0075"), start)
    agreed = tuple(AgreedRow(r.due_date, r.amount, r.fee) for r in rows)
    terms = AgreementTerms(start, principal, 0, 0, agreed, paid_before)
    today = start + timedelta(days=days)
    history = [Payment(start + timedelta(days=min(d, days)), a) for d, a in pays]
    state = plan_state(terms, history, today, POLICY.agreements, POLICY.fees.daily_interest_rate)
    into_plan = sum(p.amount for p in plan_payments(history, paid_before) if p.paid_on <= today)
    assert state.paid + state.credit == into_plan
    assert all(r.amount >= 1 for r in state.rows)
    assert all(r.paid < r.amount for r in state.rows if r.status == "missed")  # only an unpaid row is missed


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    st.integers(100_000, 5_000_000),
    st.sampled_from([3, 6, 12]),
    st.lists(st.tuples(st.integers(1, 300), st.integers(1, 2_000_000)), max_size=4),
    st.integers(1, 400),
)
def test_end_of_day_run_again_changes_nothing(
    session: Session, policy: Policy, balance: int, periods: int, pays: list[tuple[int, int]], days: int
) -> None:
    rec = record(statement_balance=balance, minimum_payment=balance // 10)
    accounts.upsert_account(session, rec)
    agreed = date(2026, 4, 5)
    sit = negotiation.situation(session, rec.account_id, policy, at(agreed))
    offer = negotiation.offer_for(sit, "installment", agreed, periods=periods)
    plan, _ = negotiation.create_plan(session, rec.account_id, offer, "api", f"eod-{rec.account_id}", at(agreed))
    business_day = agreed + timedelta(days=days)
    for n, (d, amount) in enumerate(sorted(pays)):
        day = agreed + timedelta(days=min(d, days))
        when = datetime(day.year, day.month, day.day, 9, tzinfo=TZ)
        accounts.post_payment(session, rec.account_id, amount, when, f"p{n}", policy, at(day))
    account = accounts.get_account(session, rec.account_id)
    eod.process_accounts(session, [account.id], policy, business_day)
    before = (plan.status, plan.ended_on, [(r.status, r.paid) for r in plan.rows])
    view_before = accounts.account_view(session, rec.account_id, policy, at(business_day)).position
    again = eod.process_accounts(session, [account.id], policy, business_day)
    assert again.rows == again.broken == again.completed == 0
    assert (plan.status, plan.ended_on, [(r.status, r.paid) for r in plan.rows]) == before
    assert accounts.account_view(session, rec.account_id, policy, at(business_day)).position == view_before
    assert all(r.amount >= 1 for r in plan.rows)
