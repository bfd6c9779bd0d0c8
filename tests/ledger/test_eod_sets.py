"""The set-wise end-of-day (ledger/eod_sets.py) writes exactly what the per-account path writes.

A random book (seeded) of accounts with plans in every state, payments on time, late inside and
past the grace days, partial, split, early and overpaid, open promises (one or two per account),
plans that no longer govern: both paths run on it, day after day and once after weeks of
downtime, on the same starting rows (a savepoint rolled back between them), and every plan, plan
row, promise and end-of-day audit row of the book must come out the same, as must the summaries.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from ledger import accounts, eod
from ledger.clock import Clock
from ledger.models import AuditLog, LedgerEntry, Plan, PlanRow, Promise, Statement
from ledger.plans import installment_schedule
from ledger.policy import Policy
from tests.conftest import TZ, JoinedDatabase, joined_database
from tests.factories import record

START = date(2026, 3, 1)
RUN_DAYS = [date(2026, 5, 1), date(2026, 5, 2), date(2026, 5, 6), date(2026, 7, 20), date(2026, 7, 20)]


@dataclass
class Book:
    pks: list[int]
    account_ids: list[str]


def _payments_for(rng: random.Random, rows: list[Any], start: date) -> list[tuple[date, int]]:
    """How one holder pays a plan's rows: on time, in the grace days, past them, part, split, early."""
    habit = rng.random()
    out: list[tuple[date, int]] = []
    if habit < 0.1:
        return out  # never pays
    if habit < 0.18:  # pays the whole plan off early, some day after it began
        day = start + timedelta(days=rng.randint(1, 50))
        return [(day, sum(r.amount for r in rows) - rng.choice([0, 0, 1, 500]))]
    for k, r in enumerate(rows):
        style = rng.random()
        grace = rng.choice([0, 1, 2, 3, 3, 4, 5, 10])  # on the boundary of 3 grace days, and past it
        if style < 0.45:
            out.append((r.due_date, r.amount))
        elif style < 0.6:
            out.append((r.due_date + timedelta(days=grace), r.amount))
        elif style < 0.7:
            out.append((r.due_date, r.amount // 2))  # part
            if rng.random() < 0.5:
                out.append((r.due_date + timedelta(days=grace), r.amount - r.amount // 2))
        elif style < 0.78:
            out += [(r.due_date, r.amount // 3), (r.due_date, r.amount - r.amount // 3)]  # split, same day
        elif style < 0.85:
            out.append((r.due_date - timedelta(days=rng.randint(1, 20)), r.amount + rng.choice([0, 1_000])))
        elif style < 0.9:
            out.append((r.due_date, r.amount - rng.choice([1, 999, 1_000])))  # just short
        elif k == 0 and style < 0.95:
            out.append((start - timedelta(days=40), r.amount))  # before the statement: not counted
        # else: misses this one
    return out


def _plan(
    s: Session, rng: random.Random, account_pk: int, start: date, status: str, n: int, kind: str = "installment"
) -> Plan:
    periods = 1 if kind == "deferment" else rng.choice([1, 2, 3, 6, 12])
    carried_interest, carried_fees = rng.choice([(0, 0), (12_345, 0), (8_000, 3_000)])
    principal = rng.randint(5_000, 3_000_000) + carried_interest + carried_fees
    rate = Decimal(0) if kind == "deferment" else Decimal("0.0075")
    fee, rows = installment_schedule(principal, periods, rate, start, principal - carried_interest - carried_fees)
    plan = Plan(
        plan_id=f"pl{account_pk}-{n}",
        account_pk=account_pk,
        type=kind,
        status=status,
        open_slot=1 if status in ("active", "pending") else None,
        principal=principal,
        periods=periods,
        fee_rate_per_period=rate,
        total_fee=fee,
        apr=Decimal("0.1"),
        created_via="api",
        idempotency_key=f"k{account_pk}-{n}",
        created_on=start,
        fee_base=principal - carried_interest - carried_fees,
        carried_interest=carried_interest,
        carried_fees=carried_fees,
        paid_before=rng.choice([0, 0, 0, 50_000]),
        ended_on=None if status in ("active", "pending") else start + timedelta(days=20),
        rows=[PlanRow(seq=k + 1, due_date=r.due_date, amount=r.amount, fee=r.fee) for k, r in enumerate(rows)],
    )
    s.add(plan)
    s.flush()
    return plan


def build_book(s: Session, seed: int, n: int = 120) -> Book:
    rng = random.Random(seed)
    book = Book([], [])
    for _ in range(n):
        statement_date = START + timedelta(days=rng.randint(0, 20))
        paid_since = rng.choice([0, 0, 0, 30_000])
        account = accounts.upsert_account(
            s,
            record(
                statement_date=statement_date,
                due_date=statement_date + timedelta(days=20),
                paid_since_statement=paid_since,
                daily_interest_rate=rng.choice([None, Decimal("0.0004")]),
            ),
        )
        book.pks.append(account.id)
        book.account_ids.append(account.account_id)
        if rng.random() < 0.1:  # an older statement as well: only the latest counts
            s.add(
                Statement(
                    account_pk=account.id,
                    statement_date=statement_date - timedelta(days=30),
                    due_date=statement_date - timedelta(days=10),
                    statement_balance=500_000,
                    minimum_payment=50_000,
                    paid_since_statement=7_000,
                )
            )
        shape = rng.random()
        plans: list[Plan] = []
        if shape < 0.15:
            pass  # promises only
        elif shape < 0.25:  # an old plan that ended before this statement, then the running one
            plans.append(
                _plan(s, rng, account.id, statement_date - timedelta(days=60), rng.choice(["broken", "completed"]), 0)
            )
            plans.append(_plan(s, rng, account.id, statement_date + timedelta(days=rng.randint(0, 30)), "active", 1))
        elif shape < 0.3:  # the running plan, then one ended on this statement that now governs
            plans.append(_plan(s, rng, account.id, statement_date + timedelta(days=5), "active", 0))
            ended = statement_date + timedelta(days=rng.choice([-1, 0, 0, 6]))  # governs from the statement's day
            plans.append(_plan(s, rng, account.id, ended, rng.choice(["completed", "broken"]), 1))
        elif shape < 0.35:
            plans.append(_plan(s, rng, account.id, statement_date + timedelta(days=3), "pending", 0))
        else:
            kind = rng.choice(["installment", "installment", "installment", "personalized", "deferment"])
            started = statement_date + timedelta(days=rng.randint(0, 70))
            plans.append(_plan(s, rng, account.id, started, "active", 0, kind))
        pays: list[tuple[date, int]] = []
        for plan in plans:
            if plan.status == "active":
                pays += _payments_for(rng, list(plan.rows), plan.created_on)
        if rng.random() < 0.1:
            pays.append((statement_date + timedelta(days=rng.randint(0, 100)), rng.randint(1, 200_000)))
        for k, (day, amount) in enumerate(pays):
            s.add(
                LedgerEntry(account_pk=account.id, kind="payment", amount=amount, effective_date=day, reference=f"p{k}")
            )
        for k in range(rng.choice([0, 0, 1, 2])):  # one promise, or a promise in two parts
            made = statement_date + timedelta(days=rng.randint(0, 60))
            s.add(
                Promise(
                    promise_id=f"pr{account.id}-{k}",
                    account_pk=account.id,
                    amount=rng.choice([1_000, 50_000, 200_000]),
                    due_date=made + timedelta(days=rng.randint(0, 10) + 12 * k),
                    status=rng.choice(["open", "open", "open", "kept"]),
                    created_via="chat",
                    idempotency_key=f"pk{account.id}-{k}",
                    created_on=made,
                    paid_before=rng.choice([0, 0, 20_000]),
                )
            )
    s.flush()
    return book


def snapshot(s: Session, book: Book) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the end-of-day may write, for the book's accounts (audit rows without their ids)."""
    plans = Plan.__table__
    rows = PlanRow.__table__
    promises = Promise.__table__
    mine = plans.c.account_pk.in_(book.pks)  # type: ignore[attr-defined]
    audits = s.execute(
        select(AuditLog.action, AuditLog.subject, AuditLog.detail, AuditLog.at).where(
            AuditLog.actor == "eod", AuditLog.subject.in_(book.account_ids)
        )
    )
    return {
        "plans": [tuple(r) for r in s.execute(select(plans).where(mine).order_by(plans.c.id))],  # type: ignore[attr-defined]
        "rows": [
            tuple(r)
            for r in s.execute(
                select(rows).join(plans, plans.c.id == rows.c.plan_pk).where(mine).order_by(rows.c.id)  # type: ignore[attr-defined]
            )
        ],
        "promises": [
            tuple(r)
            for r in s.execute(
                select(promises).where(promises.c.account_pk.in_(book.pks)).order_by(promises.c.id)  # type: ignore[attr-defined]
            )
        ],
        "audit": sorted((a, b, json.dumps(c, sort_keys=True), d.isoformat()) for a, b, c, d in audits),
    }


def run_days(db: JoinedDatabase, policy: Policy, book: Book, path: str) -> list[tuple[Any, ...]]:
    """End-of-day on each of RUN_DAYS by `path` (small chunks and batches, so several run), with
    what each run reported and the book's rows after it."""
    out = []
    for day in RUN_DAYS:
        clock = Clock.at(datetime(day.year, day.month, day.day, 1, 0, tzinfo=TZ))
        summary = eod.run_eod(db, policy, clock, chunk=7, path=path, batch=45)
        with db.transaction(readonly=True) as s:
            out.append((day, summary.as_dict(), sorted(summary.broken_plan_ids), snapshot(s, book)))
    return out


@contextmanager
def book_in_savepoint(engine: Engine, url: str, seed: int) -> Iterator[tuple[JoinedDatabase, Book, Any]]:
    with joined_database(engine, url) as db:
        with db.transaction() as s:
            book = build_book(s, seed)
        yield db, book, db.connection


def both_paths(engine: Engine, url: str, policy: Policy, seed: int) -> tuple[list[Any], list[Any]]:
    with book_in_savepoint(engine, url, seed) as (db, book, conn):
        before = conn.begin_nested()
        by_account = run_days(db, policy, book, "accounts")
        before.rollback()
        set_wise = run_days(db, policy, book, "sets")
    return by_account, set_wise


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_set_wise_path_writes_what_the_per_account_path_writes(
    engine: Engine, database_url: str, policy: Policy, seed: int
) -> None:
    by_account, set_wise = both_paths(engine, database_url, policy, seed)
    last = by_account[-1][3]
    # The book exercises what matters: rows of every status, plans broken and completed, promises judged.
    assert {r[-2] for r in last["rows"]} >= {"due", "paid", "missed"}
    assert {p[4] for p in last["plans"]} >= {"active", "broken", "completed"}
    assert {p[5] for day in by_account for p in day[3]["promises"]} >= {"open", "kept", "broken"}
    assert any(p[-1] == "pending" for p in last["plans"])  # notices queued
    for (day, a_sum, a_broken, a_rows), (_, s_sum, s_broken, s_rows) in zip(by_account, set_wise, strict=True):
        assert (a_sum, a_broken) == (s_sum, s_broken), day
        for table in a_rows:
            assert a_rows[table] == s_rows[table], (day, table)
    # The repeat run on the last day changed nothing, on either path.
    assert by_account[-1][1]["rows"] == set_wise[-1][1]["rows"] == 0
    assert by_account[-1][3] == by_account[-2][3]


@pytest.mark.parametrize("grace_days, misses_allowed, early", [(0, 0, "charged"), (5, 2, "waived")])
def test_the_paths_agree_under_other_agreement_rules(
    engine: Engine, database_url: str, policy: Policy, grace_days: int, misses_allowed: int, early: str
) -> None:
    rules = policy.agreements.model_copy(
        update={"grace_days": grace_days, "misses_allowed": misses_allowed, "early_payoff_unearned_fees": early}
    )
    other = policy.model_copy(update={"agreements": rules})
    by_account, set_wise = both_paths(engine, database_url, other, seed=4)
    assert [x[:3] for x in by_account] == [x[:3] for x in set_wise]
    assert [x[3] for x in by_account] == [x[3] for x in set_wise]


def test_runs_take_the_set_wise_path_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(eod.PATH_ENV, raising=False)
    assert eod.eod_path() == "sets"
    monkeypatch.setenv(eod.PATH_ENV, "accounts")
    assert eod.eod_path() == "accounts"
    assert eod.eod_path("sets") == "sets"
    monkeypatch.setenv(eod.PATH_ENV, "fast")
    with pytest.raises(ValueError, match="sets or accounts"):
        eod.eod_path()
