"""The life of an agreement, worked through with a frozen clock (docs/money.md's example extended).

The account: 10,000 yuan statement on 5 Mar, minimum 1,000, due 25 Mar; nothing paid. On 5 Apr
it owes 10,000 principal + 160 interest (32 days at 0.05 %) + 50 违约金 = 10,210 yuan. A 3-period
plan at 0.75 % a period, fee on the principal only: fee 225, rows 3,478.33 / 3,478.33 / 3,478.34,
due 5 May, 5 Jun, 5 Jul. Policy: grace 3 days, one missed instalment allowed at a time.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from ledger import accounts, eod, negotiation
from ledger.agreements import AgreedRow, Agreement, AgreementTerms, plan_state, position_under
from ledger.clock import Clock
from ledger.fees import AccountTerms, Payment
from ledger.models import Plan, Promise
from ledger.plans import installment_schedule
from ledger.policy import AgreementPolicy, FeePolicy, Policy, load_policy
from tests.conftest import ROOT, TZ
from tests.factories import record

ROWS = [347_833, 347_833, 347_834]


def at(day: date) -> Clock:
    return Clock.at(datetime(day.year, day.month, day.day, 10, tzinfo=TZ))


def pay(session: Session, policy: Policy, account_id: str, amount: int, day: date, ref: str) -> None:
    when = datetime(day.year, day.month, day.day, 9, tzinfo=TZ)
    accounts.post_payment(session, account_id, amount, when, ref, policy, at(day))


def end_of_day(session: Session, policy: Policy, day: date, account_id: str) -> eod.EodSummary:
    """End-of-day processing for this test's account (other tests may have committed accounts)."""
    pks = [pk for pk in eod.accounts_with_agreements(session) if pk == accounts.get_account(session, account_id).id]
    return eod.process_accounts(session, pks, policy, day)


def mine(notices: list[eod.Notice], plan: Plan) -> list[eod.Notice]:
    return [n for n in notices if n.plan_pk == plan.id]


def view(session: Session, policy: Policy, account_id: str, day: date) -> accounts.AccountView:
    return accounts.account_view(session, account_id, policy, at(day))


@pytest.fixture
def planned(session: Session, policy: Policy, clock: Clock) -> tuple[str, Plan]:
    rec = record()
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, clock)
    offer = negotiation.offer_for(sit, "installment", clock.today(), periods=3)
    plan, _ = negotiation.create_plan(session, rec.account_id, offer, "chat", f"k-{rec.account_id}", clock)
    return rec.account_id, plan


def test_plan_takes_in_what_is_owed_with_the_fee_on_principal_only(planned: tuple[str, Plan]) -> None:
    _, plan = planned
    assert (plan.principal, plan.carried_interest, plan.carried_fees) == (1_021_000, 16_000, 5_000)
    assert plan.fee_base == 1_000_000 and plan.total_fee == 22_500  # 10,000 x 0.75 % x 3, not on 10,210
    assert [r.amount for r in plan.rows] == ROWS
    assert [r.due_date for r in plan.rows] == [date(2026, 5, 5), date(2026, 6, 5), date(2026, 7, 5)]


def test_while_the_plan_runs_its_schedule_is_what_is_owed(
    session: Session, policy: Policy, planned: tuple[str, Plan]
) -> None:
    account_id, _ = planned
    for day in (date(2026, 4, 6), date(2026, 4, 25), date(2026, 5, 1)):
        pos = view(session, policy, account_id, day).position
        # No interest and no new 违约金 on the amount inside the plan (25 Apr was a cycle due date).
        assert pos.outstanding.total == sum(ROWS)
        assert (pos.amount_due.total, pos.overdue_days, pos.bucket) == (ROWS[0], 0, "M0")
    state = view(session, policy, account_id, date(2026, 5, 1)).plan_states
    [s] = state.values()
    assert (s.next_due_date, s.next_due_amount, s.paid_periods, s.missed_periods, s.remaining) == (
        date(2026, 5, 5),
        ROWS[0],
        0,
        0,
        sum(ROWS),
    )


def test_every_row_paid_on_its_date_completes_the_plan(
    session: Session, policy: Policy, planned: tuple[str, Plan]
) -> None:
    account_id, plan = planned
    for k, (amount, due) in enumerate(zip(ROWS, (date(2026, 5, 5), date(2026, 6, 5), date(2026, 7, 5)), strict=True)):
        pay(session, policy, account_id, amount, due, f"row-{k}")
        end_of_day(session, policy, due, account_id)
        assert plan.rows[k].status == "paid" and plan.rows[k].paid == amount
        assert plan.status == ("completed" if k == 2 else "active")
    assert plan.open_slot is None and plan.ended_on == date(2026, 7, 5)
    pos = view(session, policy, account_id, date(2026, 8, 1)).position
    assert (pos.outstanding.total, pos.amount_due.total, pos.overdue_days, pos.credit) == (0, 0, 0, 0)


def test_a_part_payment_does_not_complete_the_plan(session: Session, policy: Policy, planned: tuple[str, Plan]) -> None:
    account_id, plan = planned
    pay(session, policy, account_id, 100_000, date(2026, 4, 20), "part")
    end_of_day(session, policy, date(2026, 4, 21), account_id)
    assert plan.status == "active" and plan.rows[0].paid == 100_000 and plan.rows[0].status == "due"
    assert view(session, policy, account_id, date(2026, 4, 21)).position.amount_due.total == ROWS[0] - 100_000


def test_a_row_unpaid_beyond_grace_is_missed_but_one_miss_does_not_break(
    session: Session, policy: Policy, planned: tuple[str, Plan]
) -> None:
    account_id, plan = planned
    end_of_day(session, policy, date(2026, 5, 8), account_id)  # 5 May + 3 grace days: still only due
    assert plan.rows[0].status == "due"
    assert view(session, policy, account_id, date(2026, 5, 8)).position.overdue_days == 0
    end_of_day(session, policy, date(2026, 5, 9), account_id)
    assert plan.rows[0].status == "missed" and plan.status == "active"
    pos = view(session, policy, account_id, date(2026, 5, 9)).position
    assert (pos.overdue_days, pos.amount_due.total, pos.outstanding.total) == (4, ROWS[0], sum(ROWS))
    # Catching up: the missed row paid late is paid, and the plan carries on.
    pay(session, policy, account_id, ROWS[0], date(2026, 5, 12), "late")
    assert plan.rows[0].status == "paid" and plan.status == "active"
    assert view(session, policy, account_id, date(2026, 5, 12)).position.overdue_days == 0


def test_misses_beyond_the_policy_break_the_plan_and_accrual_resumes(
    session: Session, policy: Policy, planned: tuple[str, Plan]
) -> None:
    account_id, plan = planned
    end_of_day(session, policy, date(2026, 6, 8), account_id)
    assert plan.status == "active"
    summary = end_of_day(session, policy, date(2026, 6, 9), account_id)  # row 2 missed too: two misses > 1 allowed
    assert summary.broken == 1 and plan.status == "broken" and plan.ended_on == date(2026, 6, 9)
    assert plan.open_slot is None and plan.notice == "pending"
    assert [r.status for r in plan.rows] == ["missed", "missed", "due"]
    # What is left: the carried 违约金 and interest, the fees of rows 1-2 (row 3's fee dropped), principal.
    on_break = view(session, policy, account_id, date(2026, 6, 9)).position
    assert on_break.outstanding.principal == 1_000_000
    assert (on_break.outstanding.late_fee, on_break.outstanding.plan_fee) == (5_000, 15_000)
    later = view(session, policy, account_id, date(2026, 6, 19)).position
    # Interest resumes on the principal only, from the day it broke: 9-19 Jun, 11 days at 0.05 % of
    # 10,000 yuan = 55 yuan on top of the 160 carried in. No new 违约金: the minimum on what is left
    # (10 % of 10,000) is only billed on the next statement (5 Jul, due 25 Jul).
    assert on_break.outstanding.interest == 16_000 + 500
    assert later.outstanding.interest == 16_000 + 5_500
    assert later.outstanding.late_fee == 5_000
    assert later.overdue_days == (date(2026, 6, 19) - date(2026, 5, 5)).days
    assert later.amount_due.total == later.outstanding.total  # a broken plan's balance is due at once
    # A second run changes nothing more and the notice stays pending until it is sent.
    again = end_of_day(session, policy, date(2026, 6, 9), account_id)
    assert again.broken == 0 and plan.notice == "pending"


def test_a_broken_plans_holder_is_told_once_within_the_contact_rules(
    session: Session, policy: Policy, planned: tuple[str, Plan]
) -> None:
    account_id, plan = planned
    end_of_day(session, policy, date(2026, 6, 9), account_id)
    night = Clock.at(datetime(2026, 6, 9, 23, 30, tzinfo=TZ))
    assert mine(eod.claim_notices(session, policy, night), plan) == []  # quiet hours: deferred, still pending
    assert plan.notice == "pending"
    morning = Clock.at(datetime(2026, 6, 10, 9, 0, tzinfo=TZ))
    [notice] = mine(eod.claim_notices(session, policy, morning), plan)
    assert "退订" in notice.text and "逾期" not in notice.text and "元" not in notice.text
    eod.notice_sent(session, notice, True, morning)
    session.refresh(plan)
    assert plan.notice == "sent"
    assert mine(eod.claim_notices(session, policy, Clock.at(datetime(2026, 6, 11, 9, 0, tzinfo=TZ))), plan) == []


def test_an_opted_out_holder_gets_no_broken_plan_sms(
    session: Session, policy: Policy, planned: tuple[str, Plan]
) -> None:
    from sqlalchemy import select

    from ledger.models import ContactPreference

    account_id, plan = planned
    account = accounts.get_account(session, account_id)
    for pref in session.scalars(
        select(ContactPreference).where(ContactPreference.cardholder_id == account.cardholder_id)
    ):
        if pref.channel == "sms":
            pref.value = "opted_out"
    end_of_day(session, policy, date(2026, 6, 9), account_id)
    assert mine(eod.claim_notices(session, policy, Clock.at(datetime(2026, 6, 10, 9, 0, tzinfo=TZ))), plan) == []
    assert plan.notice == "skipped:opted_out"


def test_early_payoff_waives_the_fees_of_rows_not_yet_due(
    session: Session, policy: Policy, planned: tuple[str, Plan]
) -> None:
    account_id, plan = planned
    pay(session, policy, account_id, ROWS[0], date(2026, 5, 5), "r1")
    payoff = sum(ROWS[1:]) - 2 * 7_500  # rows 2 and 3 less their 75-yuan fees
    pay(session, policy, account_id, payoff, date(2026, 5, 20), "payoff")
    assert plan.status == "completed"
    assert view(session, policy, account_id, date(2026, 5, 21)).position.outstanding.total == 0


def test_overpayment_is_kept_as_credit(session: Session, policy: Policy, planned: tuple[str, Plan]) -> None:
    account_id, plan = planned
    pay(session, policy, account_id, sum(ROWS) + 12_345, date(2026, 4, 10), "too-much")
    v = view(session, policy, account_id, date(2026, 4, 10))
    assert plan.status == "completed"
    assert v.position.credit == 12_345 + 22_500  # no row was due yet: their fees are waived too
    assert v.position.outstanding.total == 0


def test_overpayment_without_a_plan_is_kept_as_credit(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    owed = accounts.account_view(session, rec.account_id, policy, clock).position.outstanding.total
    pay(session, policy, rec.account_id, owed + 5_000, clock.today(), "over")
    pos = accounts.account_view(session, rec.account_id, policy, clock).position
    assert (pos.outstanding.total, pos.credit) == (0, 5_000)


def test_deferment_paid_on_its_date_leaves_the_account_current(session: Session, policy: Policy, clock: Clock) -> None:
    # Due 25 Feb, so 39 days overdue (M2, deferment up to 30 days) on 5 Apr; 25 Apr's cycle falls inside.
    rec = record(statement_date=date(2026, 2, 5), due_date=date(2026, 2, 25))
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, clock)
    assert sit.bucket == "M2"
    offer = negotiation.offer_for(sit, "deferment", clock.today(), pay_on=date(2026, 4, 30))
    plain = view(session, policy, rec.account_id, date(2026, 4, 30)).position.amount_due.total
    assert offer.schedule[0].amount < plain  # no 违约金 at 25 Apr inside the deferment
    plan, _ = negotiation.create_plan(session, rec.account_id, offer, "chat", f"d-{rec.account_id}", clock)
    during = view(session, policy, rec.account_id, date(2026, 4, 20)).position
    assert (during.overdue_days, during.amount_due.total) == (0, offer.schedule[0].amount)
    pay(session, policy, rec.account_id, offer.schedule[0].amount, date(2026, 4, 30), "deferred")
    assert plan.status == "completed"
    for day in (date(2026, 4, 30), date(2026, 5, 1)):
        assert view(session, policy, rec.account_id, day).position.overdue_days == 0


def test_deferment_not_paid_breaks_and_the_overdue_returns(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, clock)
    offer = negotiation.offer_for(sit, "deferment", clock.today(), pay_on=date(2026, 4, 15))
    plan, _ = negotiation.create_plan(session, rec.account_id, offer, "chat", f"d-{rec.account_id}", clock)
    end_of_day(session, policy, date(2026, 4, 19), rec.account_id)
    assert plan.status == "broken"
    assert view(session, policy, rec.account_id, date(2026, 4, 19)).position.overdue_days == 25


def test_promise_paid_late_is_broken(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    promise, _ = negotiation.create_promise(
        session, rec.account_id, 80_000, date(2026, 4, 8), "chat", f"p-{rec.account_id}", policy, clock
    )
    end_of_day(session, policy, date(2026, 4, 8), rec.account_id)
    assert promise.status == "open"
    pay(session, policy, rec.account_id, 80_000, date(2026, 4, 9), "late")
    assert promise.status == "broken"
    end_of_day(session, policy, date(2026, 4, 10), rec.account_id)
    assert promise.status == "broken"


def test_a_payment_made_before_the_promise_does_not_keep_it(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    pay(session, policy, rec.account_id, 80_000, clock.today(), "before")
    promise, _ = negotiation.create_promise(
        session, rec.account_id, 50_000, date(2026, 4, 8), "chat", f"p-{rec.account_id}", policy, clock
    )
    end_of_day(session, policy, date(2026, 4, 9), rec.account_id)
    assert promise.status == "broken"


def test_promise_kept_on_its_date(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    promise, _ = negotiation.create_promise(
        session, rec.account_id, 80_000, date(2026, 4, 8), "chat", f"p-{rec.account_id}", policy, clock
    )
    pay(session, policy, rec.account_id, 80_000, date(2026, 4, 8), "on-time")
    assert promise.status == "kept"
    assert session.get(Promise, promise.id) is promise


def test_personalised_plan_from_monthly_capacity(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record(statement_date=date(2025, 10, 5), due_date=date(2025, 10, 25))  # 162 days: M6
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, clock)
    offer = negotiation.offer_for(sit, "personalized", clock.today(), monthly=50_000)
    assert offer.needs_approval and offer.first_amount <= 50_000 and offer.periods <= 60
    assert offer.total_fee > 0 and offer.apr > 0
    shorter = negotiation.offer_for(sit, "personalized", clock.today(), periods=offer.periods - 1)
    assert max(r.amount for r in shorter.schedule) > 50_000  # the fewest periods that fit


# --- properties ---------------------------------------------------------------------------------

START = date(2026, 1, 31)
RATE = Decimal("0.0005")


def plan_terms(principal: int, periods: int, rate: Decimal, carried: int = 0) -> AgreementTerms:
    _, rows = installment_schedule(principal + carried, periods, rate, START, principal)
    return AgreementTerms(START, principal, carried, 0, tuple(AgreedRow(r.due_date, r.amount, r.fee) for r in rows))


def test_month_arithmetic_counts_from_the_start_date() -> None:
    _, rows = installment_schedule(300_000, 4, Decimal("0.006"), date(2027, 12, 31))
    assert [r.due_date for r in rows] == [date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30)]


payments = st.lists(
    st.tuples(st.integers(0, 400), st.integers(1, 500_000)).map(lambda t: Payment(START + timedelta(days=t[0]), t[1])),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1_000, 5_000_000),
    st.integers(1, 24),
    st.decimals("0", "0.01", places=4),
    payments,
    st.sampled_from(["waived", "charged"]),
    st.integers(0, 400),
)
def test_allocation_never_loses_a_fen(
    principal: int, periods: int, rate: Decimal, pays: list[Payment], payoff: str, day: int
) -> None:
    terms = plan_terms(principal, periods, rate)
    rules = AgreementPolicy(early_payoff_unearned_fees=payoff)  # type: ignore[arg-type]
    as_of = START + timedelta(days=day)
    state = plan_state(terms, pays, as_of, rules, RATE)
    paid_in = sum(p.amount for p in pays if p.paid_on <= as_of)
    assert state.paid + state.credit == paid_in  # every fen is on a row or kept as credit
    assert all(0 <= r.paid <= r.amount for r in state.rows)
    assert state.remaining <= terms.total - state.paid  # less only by fees waived on early payoff
    if payoff == "charged":
        assert state.remaining == terms.total - state.paid


@settings(max_examples=100, deadline=None)
@given(st.integers(1_000, 5_000_000), st.integers(0, 200_000), st.integers(1, 24), st.integers(0, 800))
def test_a_kept_plan_never_owes_more_than_its_total(principal: int, carried: int, periods: int, day: int) -> None:
    terms = plan_terms(principal, periods, Decimal("0.006"), carried)
    # Every row paid on its date: the plan is kept.
    pays = [Payment(r.due_date, r.amount) for r in terms.rows]
    as_of = START + timedelta(days=day)
    statement = AccountTerms(principal + carried, principal // 10, START, START)
    pos, state = position_under(statement, pays, as_of, _fees(), AgreementPolicy(), Agreement("installment", terms))
    assert state is not None and state.status != "broken"
    assert pos.outstanding.total + state.paid <= terms.total
    assert pos.overdue_days == 0


def _fees() -> FeePolicy:
    return load_policy(ROOT / "policy.yml").fees


def test_a_promise_of_what_clears_on_its_date_is_accepted(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record(minimum_payment=1_000_000)  # the whole statement is due: interest makes it grow daily
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, clock)
    due = date(2026, 4, 10)
    amount = sit.amount_due_on(due)
    assert amount == sit.amount_due + 5 * 500  # five more days of interest: 5 yuan a day on 10,000 yuan
    promise, _ = negotiation.create_promise(
        session, rec.account_id, amount, due, "chat", f"p-{rec.account_id}", policy, clock
    )
    pay(session, policy, rec.account_id, amount, due, "on-date")
    assert promise.status == "kept"
    assert view(session, policy, rec.account_id, due).position.overdue_days == 0


def test_a_policy_may_let_interest_and_late_fees_continue_during_a_plan() -> None:
    terms = plan_terms(1_000_000, 3, Decimal("0.0075"))
    statement = AccountTerms(1_000_000, 100_000, START, START)
    rules = AgreementPolicy(interest_during_plan="continue", late_fees_during_plan="continue")
    agreement = Agreement("installment", terms)
    day_10 = START + timedelta(days=9)
    pos, _ = position_under(statement, [], day_10, _fees(), rules, agreement)
    # 10 days (31 Jan - 9 Feb) at 0.05 % on the 10,000 yuan principal inside the plan; the next instalment unchanged.
    assert pos.outstanding.interest == 10 * 500 and pos.amount_due.total == terms.rows[0].amount
    stopped, _ = position_under(statement, [], day_10, _fees(), AgreementPolicy(), agreement)
    assert stopped.outstanding.interest == 0
    missed, state = position_under(statement, [], date(2026, 3, 5), _fees(), rules, agreement)
    assert state is not None and state.missed_periods == 1
    assert missed.outstanding.late_fee == 17_042  # 5 % of the missed 3,408.33-yuan instalment, half up
