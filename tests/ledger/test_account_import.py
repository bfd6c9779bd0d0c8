"""Importing a book in bulk writes what importing each account alone writes, refuses what it refuses,
and imports nothing when any row is rejected."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import accounts, conduct, negotiation
from ledger.account_import import Accepted, BatchRejected, BookImport, Checked, Duplicates, Rejected, check_record
from ledger.accounts import AccountRecord
from ledger.clock import Clock
from ledger.models import Account, AuditLog, Cardholder, ContactPreference, Hold, Statement
from ledger.policy import Policy
from tests.factories import record


def _phone() -> str:
    return f"136{uuid.uuid4().int % 10**8:08d}"


def _stored(session: Session, account_id: str) -> tuple[object, ...]:
    """Everything an import writes about one account, as plain values."""
    account = session.scalar(select(Account).where(Account.account_id == account_id))
    assert account is not None
    holder = session.get(Cardholder, account.cardholder_id)
    assert holder is not None
    statements = [
        (s.statement_date, s.due_date, s.statement_balance, s.minimum_payment, s.paid_since_statement, s.interest_start)
        for s in session.scalars(select(Statement).where(Statement.account_pk == account.id))
    ]
    prefs = {
        p.channel: (p.value, p.rules, p.asked_by, p.source)
        for p in session.scalars(select(ContactPreference).where(ContactPreference.cardholder_id == holder.id))
    }
    holds = sorted(
        (h.kind, h.reason, h.active) for h in session.scalars(select(Hold).where(Hold.account_pk == account.id))
    )
    return (
        (holder.name, holder.phone, holder.id_last4, holder.timezone),
        (account.card_last4, account.credit_limit, account.daily_interest_rate, account.late_fee_rate),
        statements,
        prefs,
        holds,
    )


def _import(session: Session, clock: Clock, records: list[AccountRecord], chunk: int = 3) -> tuple[int, int, int]:
    book = BookImport(session, clock.now(), actor="t")
    rows: list[Checked] = [check_record(i, r) for i, r in enumerate(records, 1)]
    for lo in range(0, len(rows), chunk):
        book.add(rows[lo : lo + chunk])
    report = book.finish()
    return report.rows, report.created, report.updated


def _varied(known_phone: str) -> list[AccountRecord]:
    shared = _phone()
    return [
        record(),
        record(phone=shared, flags=("dispute",)),
        record(phone=shared, flags=("deceased", "legal_hold"), timezone="Asia/Urumqi"),
        record(phone=known_phone, daily_interest_rate=Decimal("0.0004"), late_fee_rate=Decimal("0.05")),
        record(interest_start=date(2026, 2, 20), paid_since_statement=50_000),
        record(holder_name="张\t伟\\n\n", id_last4="4321"),  # what COPY must escape
        record(phone=known_phone, card_last4="7777"),
    ]


def test_a_batch_writes_what_importing_each_alone_writes(session: Session, clock: Clock) -> None:
    # A person already in the book, who opted out of SMS: their new cards carry that over.
    known = record(phone=_phone())
    accounts.upsert_account(session, known)
    conduct.set_preference(session, conduct.cardholder_of(session, known.account_id), "sms", "opted_out", clock, "t")
    batch = _varied(known.phone)
    alone_ids = [replace(r, account_id=f"alone-{r.account_id}") for r in batch]
    for rec in alone_ids:
        accounts.upsert_account(session, rec, actor="t")
    assert _import(session, clock, batch) == (7, 7, 0)
    for rec, alone in zip(batch, alone_ids, strict=True):
        assert _stored(session, rec.account_id) == _stored(session, alone.account_id)
    assert _stored(session, batch[3].account_id)[3]["sms"][0] == "opted_out"  # type: ignore[index]
    audited = session.scalars(
        select(AuditLog.subject).where(AuditLog.action == "account.upsert", AuditLog.actor == "t")
    )
    assert {r.account_id for r in batch} <= set(audited)


def test_any_rejected_row_imports_nothing_and_every_one_is_reported(session: Session, clock: Clock) -> None:
    good = record()
    batch = [
        good,
        record(minimum_payment=2_000_000),  # above the balance
        record(due_date=date(2026, 3, 1)),  # before the statement
        replace(good, holder_name="又一次"),  # the same account twice
        record(timezone="Mars/Olympus"),
        record(),
    ]
    nested = session.begin_nested()
    with pytest.raises(BatchRejected) as caught:
        _import(session, clock, batch, chunk=2)
    nested.rollback()
    report = caught.value.report
    assert (report.rows, report.rejected_count) == (6, 4)
    assert [(r.line, r.field) for r in report.rejected] == [
        (2, "minimum_payment"),
        (3, "due_date"),
        (4, "account_id"),
        (5, "timezone"),
    ]
    assert "line 1" in report.rejected[2].reason
    assert caught.value.code == "batch_rejected"
    found = session.scalars(select(Account).where(Account.account_id.in_([r.account_id for r in batch]))).all()
    assert found == []


def test_a_reimport_replaces_the_statement_never_adds_to_it(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    before = accounts.account_view(session, rec.account_id, policy, clock).position
    newer = replace(rec, holder_name="王芳芳", phone=_phone())
    assert _import(session, clock, [newer, newer_card := record()]) == (2, 1, 1)
    view = accounts.account_view(session, rec.account_id, policy, clock)
    assert view.position == before  # the same statement: nothing doubled
    assert view.account.cardholder.name == "王芳芳"
    assert len(_stored(session, rec.account_id)[2]) == 1  # type: ignore[arg-type]
    assert _stored(session, newer_card.account_id)


def test_a_new_statement_while_a_plan_runs_is_a_rejected_row(session: Session, policy: Policy, clock: Clock) -> None:
    rec = record()
    accounts.upsert_account(session, rec)
    sit = negotiation.situation(session, rec.account_id, policy, clock)
    offer = negotiation.offer_for(sit, "installment", clock.today(), 6)
    negotiation.create_plan(session, rec.account_id, offer, "chat", f"k-{rec.account_id}", clock)
    later = replace(
        rec, statement_date=rec.statement_date + timedelta(days=30), due_date=rec.due_date + timedelta(days=30)
    )
    fresh = record()
    nested = session.begin_nested()
    with pytest.raises(BatchRejected) as caught:
        _import(session, clock, [fresh, later, replace(later, account_id=rec.account_id)])
    nested.rollback()
    assert [(r.line, r.field) for r in caught.value.report.rejected] == [(2, "statement_date"), (3, "account_id")]
    assert "plan" in caught.value.report.rejected[0].reason
    assert session.scalar(select(Account).where(Account.account_id == fresh.account_id)) is None


def test_row_checks_are_pure() -> None:
    ok = record()
    assert check_record(7, ok) == Accepted(7, ok)
    bad = check_record(8, replace(ok, flags=("vip",)))
    assert isinstance(bad, Rejected) and (bad.line, bad.field) == (8, "flags")
    seen = Duplicates()
    assert seen.check(Accepted(1, ok)) == Accepted(1, ok)
    again = seen.check(Accepted(9, ok))
    assert isinstance(again, Rejected) and again.line == 9 and "line 1" in again.reason
