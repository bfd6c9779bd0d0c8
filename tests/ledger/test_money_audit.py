"""The third money audit's eight defects, each as the worked example the audit reproduced.

Every test here failed on the code the audit found; see docs/money.md for the rules they hold.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import accounts, eod, negotiation
from ledger.agreements import AgreedRow, Agreement, AgreementTerms, plan_state, position_under
from ledger.clock import Clock
from ledger.errors import Conflict, OfferNotAllowed, ValidationFailed
from ledger.fees import AccountTerms, Payment, position
from ledger.models import Plan
from ledger.plans import Owed, installment_offer, installment_schedule, personalized_offer
from ledger.policy import AgreementPolicy, Policy
from tests.conftest import TZ
from tests.factories import record


def at(day: date, hour: int = 10) -> Clock:
    return Clock.at(datetime(day.year, day.month, day.day, hour, tzinfo=TZ))


def pay(session: Session, policy: Policy, account_id: str, amount: int, day: date, ref: str) -> tuple[object, bool]:
    when = datetime(day.year, day.month, day.day, 9, tzinfo=TZ)
    return accounts.post_payment(session, account_id, amount, when, ref, policy, at(day))


# --- 1. re-import while a plan runs ---------------------------------------------------------


def test_a_new_statement_is_refused_while_a_plan_runs_and_no_payment_is_lost(session: Session, policy: Policy) -> None:
    """The audit: pay 500 on 1 Apr, agree 3 periods on 5 Apr, re-import with statement 5 Apr, pay
    instalment 1 on 5 May: the row came out missed and the account 10 days overdue."""
    rec = record()
    accounts.upsert_account(session, rec)
    pay(session, policy, rec.account_id, 50_000, date(2026, 4, 1), "p-500")
    sit = negotiation.situation(session, rec.account_id, policy, at(date(2026, 4, 5)))
    offer = negotiation.offer_for(sit, "installment", date(2026, 4, 5), periods=3)
    plan, _ = negotiation.create_plan(
        session, rec.account_id, offer, "api", f"k-{rec.account_id}", at(date(2026, 4, 5))
    )
    new_statement = replace(
        rec,
        statement_date=date(2026, 4, 5),
        due_date=date(2026, 4, 25),
        statement_balance=offer.principal,
        minimum_payment=offer.principal // 10,
    )
    with pytest.raises(Conflict) as refused:
        accounts.upsert_account(session, new_statement)
    assert refused.value.details["plan_id"] == plan.plan_id
    # The holder's details may still change while the plan runs (same statement).
    accounts.upsert_account(session, replace(rec, holder_name="王芳芳"))
    accounts.upsert_account(session, replace(rec, phone="13900000999"))
    pay(session, policy, rec.account_id, plan.rows[0].amount, date(2026, 5, 5), "inst-1")
    view = accounts.account_view(session, rec.account_id, policy, at(date(2026, 5, 15)))
    state = view.plan_states[plan.plan_id]
    assert state.rows[0].status == "paid" and state.rows[0].paid == plan.rows[0].amount
    assert view.position.overdue_days == 0 and view.position.bucket == "M0"


def test_a_new_statement_is_refused_while_a_promise_is_open(session: Session, policy: Policy) -> None:
    """The same for a promise: it counts the payments made after it on the statement it was made on."""
    rec = record()
    accounts.upsert_account(session, rec)
    pay(session, policy, rec.account_id, 50_000, date(2026, 4, 1), "p-500")
    promise, _ = negotiation.create_promise(
        session,
        rec.account_id,
        100_000,
        date(2026, 4, 10),
        "chat",
        f"pp-{rec.account_id}",
        policy,
        at(date(2026, 4, 3)),
    )
    with pytest.raises(Conflict) as refused:
        accounts.upsert_account(session, replace(rec, statement_date=date(2026, 4, 5), due_date=date(2026, 4, 25)))
    assert refused.value.details["promise_id"] == promise.promise_id
    pay(session, policy, rec.account_id, 100_000, date(2026, 4, 8), "kept")
    [(_, status)] = accounts.account_view(session, rec.account_id, policy, at(date(2026, 4, 11))).promises
    assert status == "kept"


def test_a_statement_imported_after_a_plan_ended_is_what_is_owed(session: Session, policy: Policy) -> None:
    """Once the plan is paid off, the next statement (new spending) governs; the plan stays completed."""
    rec = record()
    accounts.upsert_account(session, rec)
    agreed = date(2026, 4, 5)
    sit = negotiation.situation(session, rec.account_id, policy, at(agreed))
    offer = negotiation.offer_for(sit, "installment", agreed, periods=3)
    plan, _ = negotiation.create_plan(session, rec.account_id, offer, "api", f"done-{rec.account_id}", at(agreed))
    pay(session, policy, rec.account_id, offer.total, date(2026, 4, 10), "all")
    assert plan.status == "completed"
    accounts.upsert_account(
        session,
        replace(
            rec,
            statement_date=date(2026, 5, 5),
            due_date=date(2026, 5, 25),
            statement_balance=200_000,
            minimum_payment=20_000,
        ),
    )
    view = accounts.account_view(session, rec.account_id, policy, at(date(2026, 6, 1)))
    assert view.position.outstanding.principal == 200_000 and view.position.overdue_days == 7
    assert view.plans[0].status == "completed" and plan.plan_id not in view.plan_states
    sit = negotiation.situation(session, rec.account_id, policy, at(date(2026, 6, 1)))
    assert sit.plan_status is None and sit.owed.principal == 200_000


# --- 2. the same terms agreed again after a plan broke -----------------------------------------


def test_the_same_terms_after_a_broken_plan_make_a_new_plan(session: Session, policy: Policy) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    start = date(2026, 4, 5)
    sit = negotiation.situation(session, rec.account_id, policy, at(start))
    offer = negotiation.offer_for(sit, "installment", start, periods=6)
    key = f"chat:{rec.account_id}:6"  # the bot's key is the conversation and the terms
    first, created = negotiation.create_plan(session, rec.account_id, offer, "chat", key, at(start))
    assert created
    broke = date(2026, 7, 1)
    accounts.sync_agreements(session, accounts.get_account(session, rec.account_id), policy, broke)
    assert first.status == "broken"
    sit = negotiation.situation(session, rec.account_id, policy, at(broke))
    again = negotiation.offer_for(sit, "installment", broke, periods=6)
    second, created = negotiation.create_plan(session, rec.account_id, again, "chat", key, at(broke))
    assert created and second.plan_id != first.plan_id and second.status == "active"
    assert second.created_on == broke and [r.amount for r in second.rows] == [r.amount for r in again.schedule]
    # A retry of that same request is still idempotent: the new plan, not a third.
    retry, created = negotiation.create_plan(session, rec.account_id, again, "chat", key, at(broke))
    assert not created and retry.plan_id == second.plan_id


# --- 3. rows never below 1 fen -----------------------------------------------------------------


def test_a_balance_smaller_than_its_periods_is_refused_with_the_nearest_that_fits(policy: Policy) -> None:
    rules = policy.for_bucket("M1")
    with pytest.raises(ValidationFailed):
        installment_schedule(
            1, 24, rules.installment_fee_rates.get(24, rules.installment_fee_rates[12]), date(2026, 4, 5)
        )
    with pytest.raises(OfferNotAllowed) as refused:
        installment_offer(Owed(5), 12, rules, date(2026, 4, 5))
    assert refused.value.details["nearest"] in (None, *[p for p in rules.installment_fee_rates if p <= 5])
    with pytest.raises(OfferNotAllowed) as too_small:
        personalized_offer(Owed(1), 24, policy.for_bucket("M4"), date(2026, 4, 5))
    assert too_small.value.details["nearest"] == 1
    ok = installment_offer(Owed(300), 3, rules, date(2026, 4, 5))
    assert min(r.amount for r in ok.schedule) >= 1


def test_a_zero_row_is_never_missed() -> None:
    """Plans stored before the fix may hold rows of 0.00: such a row is paid by nature."""
    rows = (AgreedRow(date(2026, 5, 5), 0), AgreedRow(date(2026, 6, 5), 0), AgreedRow(date(2026, 7, 5), 1))
    terms = AgreementTerms(date(2026, 4, 5), 1, 0, 0, rows)
    state = plan_state(terms, [], date(2026, 7, 1), AgreementPolicy(), Decimal("0.0005"))
    assert state.status == "active" and [r.status for r in state.rows] == ["paid", "paid", "due"]


# --- 4. no 违约金 on a minimum that was never billed, after a break ------------------------------


def test_a_broken_plan_charges_no_late_fee_on_an_unbilled_minimum(policy: Policy) -> None:
    """10,000 yuan, 12 periods, nothing paid: the break must not add a 违约金 the next day."""
    terms = AccountTerms(1_000_000, 100_000, date(2026, 3, 5), date(2026, 3, 25))
    start = date(2026, 3, 20)  # agreed before the due date: nothing carried in
    offer = installment_offer(1_000_000, 12, policy.for_bucket("M0"), start)
    plan = AgreementTerms(start, 1_000_000, 0, 0, tuple(AgreedRow(r.due_date, r.amount, r.fee) for r in offer.schedule))
    agreement = Agreement("installment", plan)
    broke = plan_state(plan, [], date(2026, 7, 1), policy.agreements, policy.fees.daily_interest_rate).ended_on
    assert broke is not None
    at_break, _ = position_under(terms, [], broke, policy.fees, policy.agreements, agreement)
    next_day, _ = position_under(terms, [], broke + timedelta(days=1), policy.fees, policy.agreements, agreement)
    assert at_break.outstanding.late_fee == next_day.outstanding.late_fee == 0
    # What it owes: the principal left on the schedule and the fees of the instalments that fell due.
    earned = sum(r.fee for r in plan.rows if r.due_date < broke)
    assert at_break.outstanding.principal == 1_000_000 and at_break.outstanding.plan_fee == earned
    assert broke == date(2026, 5, 24)  # the second instalment (20 May) missed past its 3 grace days
    # A 违约金 comes only once a minimum was billed (the next statement, 5 Jun, due 25 Jun) and left
    # unpaid past the grace days: 5% of the 1,000-yuan minimum share.
    last_grace_day, _ = position_under(terms, [], date(2026, 6, 28), policy.fees, policy.agreements, agreement)
    first_late_day, _ = position_under(terms, [], date(2026, 6, 29), policy.fees, policy.agreements, agreement)
    assert last_grace_day.outstanding.late_fee == 0 and first_late_day.outstanding.late_fee == 5_000


# --- 5. grace (容时) and tolerance (容差) -------------------------------------------------------


EXAMPLE = AccountTerms(1_000_000, 100_000, date(2026, 3, 5), date(2026, 3, 25), interest_start=date(2026, 3, 1))


def test_paid_in_full_within_grace_is_on_time(policy: Policy) -> None:
    assert policy.fees.grace_days == 3 and policy.fees.tolerance_fen == 1_000
    pos = position(EXAMPLE, [Payment(date(2026, 3, 26), 1_000_000)], date(2026, 4, 5), policy.fees)
    assert pos.outstanding.total == 0 and pos.interest_free and pos.missed_cycles == 0
    assert pos.grace_applied and not pos.tolerance_applied
    late = position(EXAMPLE, [Payment(date(2026, 3, 29), 1_000_000)], date(2026, 4, 5), policy.fees)
    assert not late.interest_free and late.missed_cycles == 1  # the fourth day is late: 违约金 and interest


def test_inside_the_grace_window_the_account_is_not_yet_overdue(policy: Policy) -> None:
    during = position(EXAMPLE, [], date(2026, 3, 27), policy.fees)
    assert during.overdue_days == 0 and during.bucket == "M0" and during.grace_applied
    after = position(EXAMPLE, [], date(2026, 3, 29), policy.fees)
    assert after.overdue_days == 4 and after.bucket == "M1" and after.amount_due.late_fee == 5_000


def test_a_shortfall_within_the_tolerance_is_not_overdue_and_costs_nothing(policy: Policy) -> None:
    late = policy.fees.late_fee.model_copy(update={"minimum_fen": 3_000})
    fees = policy.fees.model_copy(update={"late_fee": late})
    tiny = AccountTerms(1, 1, date(2024, 6, 5), date(2024, 6, 25))
    pos = position(tiny, [], date(2026, 3, 9), fees)
    assert pos.overdue_days == 0 and pos.bucket == "M0"
    assert pos.outstanding.late_fee == 0 and pos.outstanding.interest == 0
    assert pos.tolerance_applied
    short = position(EXAMPLE, [Payment(date(2026, 3, 25), 999_500)], date(2026, 5, 1), fees)
    assert short.interest_free and short.outstanding.total == 500 and short.overdue_days == 0
    assert short.tolerance_applied and short.outstanding.late_fee == 0


# --- 6 and 7. payment references and dates ----------------------------------------------------


def test_a_reference_reused_with_another_amount_is_a_conflict(session: Session, policy: Policy) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    pay(session, policy, rec.account_id, 50_000, date(2026, 4, 1), "ref-a")
    _, created = pay(session, policy, rec.account_id, 50_000, date(2026, 4, 1), "ref-a")
    assert not created
    with pytest.raises(accounts.PaymentConflict) as conflict:
        pay(session, policy, rec.account_id, 60_000, date(2026, 4, 1), "ref-a")
    assert conflict.value.code == "payment_conflict" and conflict.value.details["recorded_amount"] == "500.00"
    assert accounts.account_view(session, rec.account_id, policy, at(date(2026, 4, 2))).position.paid_total == 50_000


def test_future_and_pre_statement_payments_are_refused(session: Session, policy: Policy) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    now = at(date(2026, 4, 1))
    future = datetime(2026, 4, 2, 9, tzinfo=TZ)
    with pytest.raises(ValidationFailed) as ahead:
        accounts.post_payment(session, rec.account_id, 100, future, "f", policy, now)
    assert ahead.value.details["field"] == "paid_at"
    before = datetime(2026, 3, 1, 9, tzinfo=TZ)
    with pytest.raises(ValidationFailed) as early:
        accounts.post_payment(session, rec.account_id, 100, before, "b", policy, now)
    assert early.value.details["statement_date"] == "2026-03-05" and "statement" in early.value.message
    assert accounts.account_view(session, rec.account_id, policy, now).position.paid_total == 0


# --- 8. the documented example through the import ---------------------------------------------


def test_the_import_takes_the_posting_date_and_the_view_shows_175(session: Session, policy: Policy) -> None:
    rec = record(interest_start=date(2026, 3, 1))
    accounts.upsert_account(session, rec)
    # By 5 Apr (the view of 4 Apr counts every day up to and including the 4th): 35 days from 1 Mar.
    view = accounts.account_view(session, rec.account_id, policy, at(date(2026, 4, 4)))
    assert view.position.amount_due.interest == 17_500 and view.position.amount_due.late_fee == 5_000
    assert view.statement.interest_start == date(2026, 3, 1)
    with pytest.raises(ValidationFailed):
        accounts.upsert_account(session, record(interest_start=date(2026, 3, 6)))


# --- end-of-day over all of it ------------------------------------------------------------------


def test_end_of_day_counts_the_import_posting_date_too(session: Session, policy: Policy) -> None:
    rec = record(interest_start=date(2026, 3, 1))
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, at(date(2026, 4, 4)))
    assert sit.owed.interest == 17_500
    plan_offer = negotiation.offer_for(sit, "installment", date(2026, 4, 4), periods=3)
    plan, _ = negotiation.create_plan(
        session, rec.account_id, plan_offer, "api", f"e-{rec.account_id}", at(date(2026, 4, 4))
    )
    account = accounts.get_account(session, rec.account_id)
    first = eod.process_accounts(session, [account.id], policy, date(2026, 6, 1))
    second = eod.process_accounts(session, [account.id], policy, date(2026, 6, 1))
    assert first.rows >= 1 and second.rows == 0
    assert session.scalar(select(Plan.status).where(Plan.id == plan.id)) == "active"
