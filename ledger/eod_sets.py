"""End-of-day, set-wise: a batch of accounts read in five queries and written in four statements.

The decisions are the per-account path's (`accounts.apply_agreements`): the same pure functions
(`agreements.plan_state`, `agreements.promise_outcome`) on the same inputs (the current statement's
payments, the governing plan, the open promises), so the rows marked, plans completed or broken,
notices queued, promises judged and audit rows written are the same (tests/ledger/test_eod_sets.py
compares both paths on a random book). What changes is the traffic: instead of ORM objects loaded
and flushed account by account, each batch is

- read as plain tuples: accounts with their statements, payments, plans, the active plans' rows and
  the open promises of the batch (on PostgreSQL `= ANY(array)`, one bound parameter per query);
- computed in memory;
- written with one statement per table: on PostgreSQL `UPDATE ... FROM unnest(arrays)` for the plan
  rows, plans and promises, a multi-row INSERT for the audit rows; elsewhere an executemany.

`decide` reads and decides a batch, `write` writes what it decided (`ledger.eod.run_eod` writes one
batch while it decides the next). Each write is guarded by the state it was decided from (a plan
still active, a promise still open), so a batch never overwrites what another writer concluded
meanwhile.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, Unpack

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    Select,
    Table,
    any_,
    bindparam,
    cast,
    func,
    insert,
    literal,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from ledger.accounts import GOVERNING, Changes
from ledger.agreements import AgreedRow, AgreementTerms, plan_state, promise_outcome
from ledger.fees import Payment
from ledger.models import Account, AuditLog, LedgerEntry, Plan, PlanRow, Promise, Statement
from ledger.policy import Policy

BATCH = 20_000  # accounts per transaction
_ROWS: Table = PlanRow.__table__  # type: ignore[assignment]
_PLANS: Table = Plan.__table__  # type: ignore[assignment]
_PROMISES: Table = Promise.__table__  # type: ignore[assignment]
_AUDIT: Table = AuditLog.__table__  # type: ignore[assignment]


@dataclass
class Writes:
    """What a batch decided to write."""

    rows: list[tuple[int, str, int]] = field(default_factory=list)  # (plan row id, status, paid)
    plans: list[tuple[int, str, date | None, str | None]] = field(default_factory=list)  # (id, status, ended, notice)
    promises: list[tuple[int, str]] = field(default_factory=list)  # (id, status)
    audits: list[dict[str, object]] = field(default_factory=list)


class Tally(Protocol):
    """What counts a run's changes (`eod.EodSummary`)."""

    def add(self, changes: Changes) -> None: ...


def _among(session: Session, column: Any, ids: list[int]) -> ColumnElement[bool]:
    """`column IN ids`: on PostgreSQL one array parameter (`= ANY`), elsewhere an IN list."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(cast(literal(_array(ids)), ARRAY(BigInteger)))  # type: ignore[no-any-return]
    return column.in_(ids)  # type: ignore[no-any-return]


def _array(values: Any) -> str:
    """A PostgreSQL array literal of plain values (numbers, dates, words without quotes or commas):
    parsed by the server, much faster than a parameter list adapted value by value."""
    return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"


def _fetch(conn: Connection, query: Select[Unpack[tuple[Any, ...]]]) -> Sequence[Any]:
    """A query's rows as tuples. On PostgreSQL straight from psycopg (every column it reads is an
    int, a str or a date, which psycopg already returns as such): SQLAlchemy's own rows cost more
    than the query."""
    if conn.dialect.name != "postgresql":
        return conn.execute(query).all()
    compiled = query.compile(dialect=conn.dialect)
    with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(str(compiled), compiled.params)
        return cursor.fetchall()  # type: ignore[no-any-return]


def process_batch(session: Session, account_pks: list[int], policy: Policy, day: date, summary: Tally) -> None:
    """Bring these accounts' agreements up to `day` in the caller's transaction, adding to `summary`."""
    write(session, decide(session, account_pks, policy, day, summary))


def decide(session: Session, account_pks: list[int], policy: Policy, day: date, summary: Tally) -> Writes:
    """What bringing these accounts' agreements up to `day` writes (read in the caller's
    transaction), its counts added to `summary`."""
    conn = session.connection()
    # The current statement of each account (the latest by date), and the account's public id.
    statements: dict[int, tuple[str, date, int]] = {}
    for pk, account_id, statement_date, paid_since in _fetch(
        conn,
        select(Account.id, Account.account_id, Statement.statement_date, Statement.paid_since_statement)
        .join(Statement, Statement.account_pk == Account.id)
        .where(_among(session, Account.id, account_pks))
        .order_by(Account.id, Statement.statement_date, Statement.id),
    ):
        statements[pk] = (account_id, statement_date, paid_since)
    payments: defaultdict[int, list[tuple[date, int]]] = defaultdict(list)
    for pk, day_paid, amount in _fetch(
        conn,
        select(LedgerEntry.account_pk, LedgerEntry.effective_date, LedgerEntry.amount)
        .where(_among(session, LedgerEntry.account_pk, account_pks), LedgerEntry.kind == "payment")
        .order_by(LedgerEntry.account_pk, LedgerEntry.id),
    ):
        payments[pk].append((day_paid, amount))
    # (id, plan_id, status, created_on, principal, carried_interest, carried_fees, paid_before)
    plans: defaultdict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for found in _fetch(
        conn,
        select(
            Plan.account_pk,
            Plan.id,
            Plan.plan_id,
            Plan.status,
            Plan.created_on,
            Plan.principal,
            Plan.carried_interest,
            Plan.carried_fees,
            Plan.paid_before,
        ).where(_among(session, Plan.account_pk, account_pks)),
    ):
        plans[found[0]].append(tuple(found[1:]))
    # the active plans' rows: (id, due_date, amount, fee, status, paid), by plan, in order
    rows: defaultdict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for found in _fetch(
        conn,
        select(PlanRow.plan_pk, PlanRow.id, PlanRow.due_date, PlanRow.amount, PlanRow.fee, PlanRow.status, PlanRow.paid)
        .join(Plan, Plan.id == PlanRow.plan_pk)
        .where(_among(session, Plan.account_pk, account_pks), Plan.status == "active")
        .order_by(PlanRow.plan_pk, PlanRow.seq),
    ):
        rows[found[0]].append(tuple(found[1:]))
    # (id, promise_id, amount, due_date, paid_before)
    promises: defaultdict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for found in _fetch(
        conn,
        select(
            Promise.account_pk, Promise.id, Promise.promise_id, Promise.amount, Promise.due_date, Promise.paid_before
        )
        .where(_among(session, Promise.account_pk, account_pks), Promise.status == "open")
        .order_by(Promise.id),
    ):
        promises[found[0]].append(tuple(found[1:]))

    rules, fees = policy.agreements, policy.fees
    out = Writes()
    row_updates, plan_updates, promise_updates, audits = out.rows, out.plans, out.promises, out.audits
    for pk in sorted(statements):
        account_id, statement_date, paid_since = statements[pk]
        changes = Changes()
        # The payments the current statement counts (as accounts.statement_payments).
        pays = [Payment(statement_date, paid_since)] if paid_since else []
        pays += [Payment(d, a) for d, a in payments.get(pk, ()) if d >= statement_date]
        # The governing plan (as accounts.governing_plan): the latest begun on this statement.
        begun = [p for p in plans.get(pk, ()) if p[2] in GOVERNING and (p[2] == "active" or p[3] >= statement_date)]
        plan = max(begun, key=lambda p: p[0]) if begun else None
        if plan is not None and plan[2] == "active":
            plan_pk, plan_id, _, created_on, principal, carried_interest, carried_fees, paid_before = plan
            stored = rows.get(plan_pk, [])
            terms = AgreementTerms(
                start=created_on,
                principal=principal - carried_interest - carried_fees,
                carried_interest=carried_interest,
                carried_fees=carried_fees,
                rows=tuple(AgreedRow(due, amount, fee) for _, due, amount, fee, _, _ in stored),
                paid_before=paid_before,
            )
            state = plan_state(terms, pays, day, rules, fees.daily_interest_rate, fees.late_fee.rate)
            for (row_pk, _, _, _, status, paid), rs in zip(stored, state.rows, strict=True):
                if (status, paid) != (rs.status, rs.paid):
                    row_updates.append((row_pk, rs.status, rs.paid))
                    changes.rows += 1
            if state.status != "active":
                broken = state.status == "broken"
                plan_updates.append((plan_pk, state.status, state.ended_on, "pending" if broken else None))
                (changes.broken if broken else changes.completed).append(plan_id)
                audits.append(_audit(f"plan.{state.status}", account_id, plan_id=plan_id))
        for promise_pk, promise_id, amount, due, paid_before in promises.get(pk, ()):
            outcome = promise_outcome(amount, due, pays, paid_before, day)
            if outcome != "open":
                promise_updates.append((promise_pk, outcome))
                (changes.kept if outcome == "kept" else changes.promises_broken).append(promise_id)
                audits.append(_audit(f"promise.{outcome}", account_id, promise_id=promise_id))
        summary.add(changes)
    return out


def _audit(action: str, subject: str, **detail: object) -> dict[str, object]:
    return {"actor": "eod", "action": action, "subject": subject, "detail": detail}


def write(session: Session, writes: Writes) -> None:
    """A batch's decisions, one statement per table, in the caller's transaction."""
    if session.get_bind().dialect.name == "postgresql":
        _write_arrays(session, writes.rows, writes.plans, writes.promises)
    else:
        _write_many(session, writes.rows, writes.plans, writes.promises)
    if writes.audits:
        # `at` from the process clock, as the ORM's default
        session.connection().execute(insert(_AUDIT), writes.audits)
    session.flush()


def _write_arrays(
    session: Session,
    row_updates: list[tuple[int, str, int]],
    plan_updates: list[tuple[int, str, date | None, str | None]],
    promise_updates: list[tuple[int, str]],
) -> None:
    """One UPDATE per table, its values as arrays unnested into a relation (PostgreSQL)."""
    if row_updates:
        ids, statuses, paid = zip(*row_updates, strict=True)
        session.connection().execute(
            text(
                "UPDATE plan_rows AS r SET status = v.status, paid = v.paid "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS varchar[]), CAST(:paid AS bigint[])) "
                "AS v(id, status, paid) WHERE r.id = v.id"
            ),
            {"ids": _array(ids), "statuses": _array(statuses), "paid": _array(paid)},
        )
    if plan_updates:
        ids, statuses, ended, notices = zip(*plan_updates, strict=True)
        session.connection().execute(
            text(
                "UPDATE plans AS p SET status = v.status, ended_on = v.ended_on, open_slot = NULL, "
                "notice = COALESCE(v.notice, p.notice) "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS varchar[]), CAST(:ended AS date[]), "
                "CAST(:notices AS varchar[])) AS v(id, status, ended_on, notice) "
                "WHERE p.id = v.id AND p.status = 'active'"
            ),
            {"ids": _array(ids), "statuses": _array(statuses), "ended": _array(ended), "notices": _array(notices)},
        )
    if promise_updates:
        ids, statuses = zip(*promise_updates, strict=True)
        session.connection().execute(
            text(
                "UPDATE promises AS p SET status = v.status "
                "FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS varchar[])) AS v(id, status) "
                "WHERE p.id = v.id AND p.status = 'open'"
            ),
            {"ids": _array(ids), "statuses": _array(statuses)},
        )


def _write_many(
    session: Session,
    row_updates: list[tuple[int, str, int]],
    plan_updates: list[tuple[int, str, date | None, str | None]],
    promise_updates: list[tuple[int, str]],
) -> None:
    """One executemany per table (SQLite and others)."""
    conn = session.connection()
    if row_updates:
        conn.execute(
            update(_ROWS).where(_ROWS.c.id == bindparam("b_id")),
            [{"b_id": i, "status": s, "paid": p} for i, s, p in row_updates],
        )
    if plan_updates:
        conn.execute(
            update(_PLANS)
            .where(_PLANS.c.id == bindparam("b_id"), _PLANS.c.status == "active")
            .values(
                status=bindparam("b_status"),
                ended_on=bindparam("b_ended", type_=Date()),
                open_slot=None,
                notice=func.coalesce(bindparam("b_notice"), _PLANS.c.notice),
            ),
            [{"b_id": i, "b_status": s, "b_ended": e, "b_notice": n} for i, s, e, n in plan_updates],
        )
    if promise_updates:
        conn.execute(
            update(_PROMISES).where(_PROMISES.c.id == bindparam("b_id"), _PROMISES.c.status == "open"),
            [{"b_id": i, "status": s} for i, s in promise_updates],
        )
