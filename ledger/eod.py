"""End-of-day processing: every account with a running agreement brought up to the business day.

What it writes is a function of the ledger and the calendar (`accounts.sync_agreements`), so a
second run, or a run after days of downtime, writes the same thing the missed runs would have.
A broken plan's holder is told once by SMS; whether and when is the contact rules' decision.

Two paths write the same rows: account by account through the ORM (`process_accounts`, the
reference, 500 accounts a transaction) and set-wise (`ledger/eod_sets.py`, 20,000 accounts a
transaction, a few set queries and one bulk statement per table). Runs take the set-wise path
on PostgreSQL and SQLite alike (it is the faster on both: docs/scaling.md); `EOD_PATH=accounts`
takes the per-account one.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session, selectinload

from ledger import eod_sets, templates
from ledger.accounts import Changes, apply_agreements, statement_payments, write_rows
from ledger.clock import Clock
from ledger.compliance import decide_contact
from ledger.db import Database
from ledger.models import (
    Account,
    ContactAttempt,
    EodRun,
    LedgerEntry,
    Plan,
    Promise,
)
from ledger.policy import Policy

FINAL_SKIPS = ("opted_out", "hold", "number_suppressed")  # never sent after these; others wait and retry
PATH_ENV = "EOD_PATH"  # sets | accounts; unset: sets
PATHS = ("sets", "accounts")


@dataclass
class EodSummary:
    business_date: date
    accounts: int = 0
    rows: int = 0
    completed: int = 0
    broken: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    broken_plan_ids: list[str] = field(default_factory=list)

    def add(self, changes: Changes) -> None:
        self.accounts += 1
        self.rows += changes.rows
        self.completed += len(changes.completed)
        self.broken += len(changes.broken)
        self.promises_kept += len(changes.kept)
        self.promises_broken += len(changes.promises_broken)
        self.broken_plan_ids += changes.broken

    def merge(self, other: EodSummary) -> None:
        """Add another part of the same run."""
        self.accounts += other.accounts
        self.rows += other.rows
        self.completed += other.completed
        self.broken += other.broken
        self.promises_kept += other.promises_kept
        self.promises_broken += other.promises_broken
        self.broken_plan_ids += other.broken_plan_ids

    def as_dict(self) -> dict[str, object]:
        return {
            "accounts": self.accounts,
            "rows": self.rows,
            "completed": self.completed,
            "broken": self.broken,
            "promises_kept": self.promises_kept,
            "promises_broken": self.promises_broken,
        }


def accounts_with_agreements(session: Session) -> list[int]:
    """Accounts whose plan is running or whose promise is open, in key order."""
    plans = select(Plan.account_pk).where(Plan.status == "active")
    promises = select(Promise.account_pk).where(Promise.status == "open")
    return sorted(set(session.scalars(plans)) | set(session.scalars(promises)))


def chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def process_accounts(session: Session, account_pks: list[int], policy: Policy, day: date) -> EodSummary:
    """Bring these accounts' agreements up to `day` (one transaction: the caller's)."""
    summary = EodSummary(day)
    # Everything the chunk needs in four queries, then each account computed in memory.
    chosen = session.scalars(
        select(Account).where(Account.id.in_(account_pks)).options(selectinload(Account.statements))
    )
    payments: defaultdict[int, list[tuple[date, int]]] = defaultdict(list)
    for pk, day_paid, amount in session.execute(
        select(LedgerEntry.account_pk, LedgerEntry.effective_date, LedgerEntry.amount).where(
            LedgerEntry.account_pk.in_(account_pks), LedgerEntry.kind == "payment"
        )
    ):
        payments[pk].append((day_paid, amount))
    plans: defaultdict[int, list[Plan]] = defaultdict(list)
    for plan in session.scalars(select(Plan).where(Plan.account_pk.in_(account_pks))):
        plans[plan.account_pk].append(plan)
    promises: defaultdict[int, list[Promise]] = defaultdict(list)
    for promise in session.scalars(
        select(Promise).where(Promise.account_pk.in_(account_pks), Promise.status == "open")
    ):
        promises[promise.account_pk].append(promise)
    updates: list[dict[str, object]] = []
    for account in chosen.unique():
        if not account.statements:
            continue
        pays = statement_payments(account.statements[-1], payments[account.id])
        changes = apply_agreements(session, account, pays, plans[account.id], promises[account.id], policy, day)
        updates += changes.row_updates
        summary.add(changes)
    write_rows(session, updates)
    session.flush()
    return summary


def last_run(session: Session) -> date | None:
    return session.scalar(select(func.max(EodRun.business_date)).where(EodRun.finished_at.is_not(None)))


def record_run(session: Session, summary: EodSummary, started: datetime, finished: datetime) -> None:
    run = session.get(EodRun, summary.business_date)
    if run is None:
        run = EodRun(business_date=summary.business_date, started_at=started, accounts=0, changes={})
        session.add(run)
    run.started_at, run.finished_at = started, finished
    run.accounts, run.changes = summary.accounts, summary.as_dict()


def eod_path(path: str | None = None) -> str:
    """Which path a run takes: `path`, else EOD_PATH, else set-wise."""
    chosen = path or os.environ.get(PATH_ENV) or "sets"
    if chosen not in PATHS:
        raise ValueError(f"{PATH_ENV} must be sets or accounts: {chosen!r}")
    return chosen


def run_eod(
    db: Database,
    policy: Policy,
    clock: Clock,
    chunk: int = 500,
    *,
    path: str | None = None,
    batch: int = eod_sets.BATCH,
) -> EodSummary:
    """Bring every running agreement up to today, a chunk of accounts per transaction, and record
    the run. Safe to run twice or after downtime: each account's state is recomputed from the
    ledger for today, which is what the missed days' runs would have led to.

    `path` (`eod_path`): "accounts" takes `chunk` accounts a transaction through the ORM, "sets"
    `batch` accounts at a time set-wise (ledger/eod_sets.py: each batch read and decided in one
    transaction, written in another while the next is read). Both write the same rows."""
    started, today = clock.now(), clock.today()
    set_wise = eod_path(path) == "sets"
    with db.transaction(readonly=True) as session:
        pks = accounts_with_agreements(session)
    total = EodSummary(today)
    if set_wise:
        # A batch's writes go on a thread of their own while the next batch is read and decided:
        # the database works while Python decides (one batch's writes in flight at a time).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eod-writes") as writer:
            pending: Future[None] | None = None
            for part in chunks(pks, batch):
                with db.transaction(readonly=True) as session:
                    writes = eod_sets.decide(session, part, policy, today, total)
                if pending is not None:
                    pending.result()
                pending = writer.submit(_write_batch, db, writes)
            if pending is not None:
                pending.result()
    else:
        for part in chunks(pks, chunk):
            with db.transaction() as session:
                total.merge(process_accounts(session, part, policy, today))
    with db.transaction() as session:
        record_run(session, total, started, clock.now())
    return total


def _write_batch(db: Database, writes: eod_sets.Writes) -> None:
    with db.transaction() as session:
        eod_sets.write(session, writes)


def ran_today(db: Database, clock: Clock) -> bool:
    with db.transaction(readonly=True) as session:
        last = last_run(session)
    return last is not None and last >= clock.today()


# --- the broken-plan notice -------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    plan_pk: int
    account_pk: int
    phone: str
    text: str
    bucket: str


def claim_notices(session: Session, policy: Policy, clock: Clock, limit: int = 100) -> list[Notice]:
    """Broken-plan notices the contact rules let go now, each claimed once (never sent twice).

    Skipped for an opt-out or a hold: recorded and never sent. Deferred (quiet hours) or over a cap:
    left pending for a later tick.
    """
    now = clock.now()
    out = []
    for plan in session.scalars(select(Plan).where(Plan.notice == "pending").order_by(Plan.id).limit(limit)):
        account = session.get(Account, plan.account_pk)
        assert account is not None
        phone = account.cardholder.phone
        decision = decide_contact(  # the one contact decision, for the person, now
            session, phone=phone, account_pk=account.id, channel="sms", purpose="notice", at=now, rules=policy.contact
        )
        if decision.outcome == "skip" and decision.reason in FINAL_SKIPS:
            plan.notice = f"skipped:{decision.reason}"
            continue
        if decision.outcome != "send":
            continue
        claimed = session.execute(
            update(Plan).where(Plan.id == plan.id, Plan.notice == "pending").values(notice="sending")
        )
        if cast("CursorResult[Any]", claimed).rowcount != 1:
            continue
        inst = policy.institution
        text = templates.render("sms", "plan_broken.j2", short_name=inst.short_name, hotline=inst.hotline)
        session.add(
            ContactAttempt(
                account_pk=account.id,
                to_phone=phone,
                channel="sms",
                purpose="notice",
                status="sending",
                reason="plan_broken",
                selected_at=now,
                scheduled_at=now,
                bucket="-",
            )
        )
        out.append(Notice(plan.id, account.id, phone, text, "-"))
    session.flush()
    return out


def notice_sent(session: Session, notice: Notice, ok: bool, clock: Clock) -> None:
    """Record the outcome of a claimed notice (a failed send is not retried: told at most once)."""
    session.execute(update(Plan).where(Plan.id == notice.plan_pk).values(notice="sent" if ok else "failed"))
    attempt = session.scalar(
        select(ContactAttempt)
        .where(
            ContactAttempt.account_pk == notice.account_pk,
            ContactAttempt.reason == "plan_broken",
            ContactAttempt.status == "sending",
        )
        .order_by(ContactAttempt.id.desc())
    )
    if attempt is not None:
        attempt.status, attempt.sent_at = ("sent" if ok else "failed"), clock.now()
