"""End-of-day throughput: N accounts with running plans brought up to a day, both paths, SQLite and PostgreSQL.

`python -m bench.eod [N]` (part of `make bench`, BENCH_EOD_ACCOUNTS, default 100,000); results in
bench/results/eod.json (every run also in eod-runs.jsonl). Every account has a 6-period plan agreed
100 days before; most pay each instalment on its date, some miss one, some pay nothing (their plans
break), a few overpay.

The book is seeded once per database (PostgreSQL: COPY; SQLite: executemany) and copied (PostgreSQL:
CREATE DATABASE ... TEMPLATE; SQLite: the file), so each path has a first run on the same rows:
the set-wise path (ledger/eod_sets.py) over all N accounts, the per-account path over all of them
or, past BENCH_EOD_REFERENCE_ACCOUNTS (100,000), over that many (it runs at a few hundred accounts
a second: a million would take most of an hour). Then a second run of each (nothing to change).
Where the per-account path ran over the whole book, both paths' summaries and final row counts
must agree, or the benchmark fails. BENCH_EOD_SQLITE=0 skips SQLite (for a large N on PostgreSQL).
"""

from __future__ import annotations

import io
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import func, select

from bench.campaign import CHUNK
from bench.machine import PG_ADMIN, describe, drop_databases, on_scratch_postgres, record
from ledger import eod
from ledger.clock import Clock
from ledger.db import Database, make_engine, transaction
from ledger.fees import add_months
from ledger.models import Plan, PlanRow
from ledger.plans import installment_schedule
from ledger.policy import Policy, load_policy
from ledger.settings import ROOT
from scripts.stack import migrate

RESULTS = ROOT / "bench" / "results"
PG_DB = os.environ.get("BENCH_EOD_PG_DB", "repay_bench_eod")
PERIODS = 6
REFERENCE_MAX = int(os.environ.get("BENCH_EOD_REFERENCE_ACCOUNTS", "100000"))

# table -> columns, in the order `book` yields each table's rows
COLUMNS = {
    "cardholders": ("id", "name", "phone", "id_last4", "timezone"),
    "accounts": ("id", "account_id", "cardholder_id", "card_last4", "credit_limit"),
    "statements": (
        "account_pk",
        "statement_date",
        "due_date",
        "statement_balance",
        "minimum_payment",
        "paid_since_statement",
    ),
    "plans": (
        "id",
        "plan_id",
        "account_pk",
        "type",
        "status",
        "open_slot",
        "principal",
        "periods",
        "fee_rate_per_period",
        "total_fee",
        "apr",
        "created_via",
        "idempotency_key",
        "created_on",
        "fee_base",
        "carried_interest",
        "carried_fees",
        "paid_before",
    ),
    "plan_rows": ("plan_pk", "seq", "due_date", "amount", "fee", "status", "paid"),
    "ledger_entries": ("account_pk", "kind", "amount", "effective_date", "reference"),
}


def book(
    lo: int, hi: int, today: date, draws: random.Random, habits: random.Random
) -> dict[str, list[tuple[Any, ...]]]:
    """Accounts lo..hi-1 with a 6-period plan agreed 100 days before `today` and their payments.
    The draws are those of the earlier seeding (bench.campaign.populate, then the plans), so a
    100,000-account book is the one the earlier figures were measured on."""
    start = today - timedelta(days=100)
    fee, schedule = installment_schedule(1_000_000, PERIODS, Decimal("0.007"), start)
    assert add_months(start, 1) == schedule[0].due_date
    ids = range(lo, hi)
    terms = (Decimal("0.1300"), "api")
    out: dict[str, list[tuple[Any, ...]]] = {table: [] for table in COLUMNS}
    for i in ids:
        out["cardholders"].append((i, "持卡人", f"139{i:08d}", "1234", "Asia/Shanghai"))
        out["accounts"].append((i, f"b{i}", i, "0001", 2_000_000))
        due = today - timedelta(days=160 + draws.randint(-10, 200))  # statements from before the plans
        out["statements"].append((i, due - timedelta(days=20), due, 1_000_000, 100_000, 0))
    for _ in ids:  # populate's contact preferences and holds: not read by the end-of-day
        draws.random()
    for _ in ids:
        draws.random()
    for i in ids:
        out["plans"].append(
            (
                i,
                f"bp{i}",
                i,
                "installment",
                "active",
                1,
                1_000_000,
                PERIODS,
                Decimal("0.007"),
                fee,
                *terms,
                f"bench-{i}",
                start,
                1_000_000,
                0,
                0,
                0,
            )
        )
        out["plan_rows"] += [(i, k + 1, r.due_date, r.amount, r.fee, "due", 0) for k, r in enumerate(schedule)]
    for i in ids:
        habit = habits.random()
        for k, r in enumerate(schedule):
            if r.due_date >= today:
                break
            if habit < 0.1 or (habit < 0.3 and k == 1):  # pays nothing / misses the second
                continue
            extra = 1_000 if habit > 0.98 else 0  # a few round up: a credit
            out["ledger_entries"].append((i, "payment", r.amount + extra, r.due_date, f"b{i}-{k}"))
    return out


def parts(n: int, today: date) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    draws, habits = random.Random(7), random.Random(11)
    for lo in range(0, n, CHUNK):
        yield book(lo + 1, min(n, lo + CHUNK) + 1, today, draws, habits)


def seed(url: str, n: int, today: date) -> None:
    """The book, by COPY on PostgreSQL and executemany on SQLite; statistics refreshed after."""
    if url.startswith("postgresql"):
        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
            for part in parts(n, today):
                for table, rows in part.items():
                    text = io.StringIO()
                    for row in rows:
                        text.write("\t".join(str(v) for v in row))
                        text.write("\n")
                    with conn.cursor().copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
                        copy.write(text.getvalue())
            for table in ("cardholders", "accounts", "plans"):
                conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {n})")
            conn.commit()
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")
        return
    with sqlite3.connect(url.split("///", 1)[1]) as conn:
        for part in parts(n, today):
            for table, rows in part.items():
                cols = COLUMNS[table]
                sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                conn.executemany(sql, [tuple(str(v) if isinstance(v, (date, Decimal)) else v for v in r) for r in rows])
        conn.execute("ANALYZE")


def copy_database(url: str, suffix: str) -> str:
    """A copy of the seeded database for the other path: a template copy, or the SQLite file."""
    if url.startswith("postgresql"):
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}{suffix}")
            conn.execute(f"CREATE DATABASE {name}{suffix} TEMPLATE {name}")
        return url + suffix
    path = url.split("///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(path, path + suffix)
    return url + suffix


def drop_copy(url: str) -> None:
    if url.startswith("postgresql"):
        drop_databases(url.rsplit("/", 1)[1])


def first_and_second(url: str, policy: Policy, clock: Clock, path: str, limit: int | None) -> dict[str, Any]:
    """A first run by `path` (over the first `limit` accounts only, when given), then a second."""
    db = Database(url)
    try:
        figures: dict[str, Any] = {}
        for run in ("first", "second"):
            started = time.perf_counter()
            if limit is None:
                summary = eod.run_eod(db, policy, clock, path=path)
            else:
                summary = _accounts_path_over(db, policy, clock, limit)
            took = time.perf_counter() - started
            figures[f"{run}_run_s"] = round(took, 2)
            figures[f"{run}_run_accounts_per_s"] = round(summary.accounts / took) if summary.accounts else None
            figures[f"{run}_run_changes"] = summary.as_dict()
        figures["accounts"] = figures["first_run_changes"]["accounts"]
        figures["accounts_per_s"] = figures["first_run_accounts_per_s"]
    finally:
        db.dispose()
    with transaction(url, readonly=True) as s:
        figures["plans_by_status"] = dict(s.execute(select(Plan.status, func.count()).group_by(Plan.status)).all())
        figures["rows_by_status"] = dict(s.execute(select(PlanRow.status, func.count()).group_by(PlanRow.status)).all())
    return figures


def _accounts_path_over(db: Database, policy: Policy, clock: Clock, limit: int) -> eod.EodSummary:
    """The per-account path as `run_eod` takes it (500 accounts a transaction), over the first `limit`."""
    with db.transaction(readonly=True) as session:
        pks = eod.accounts_with_agreements(session)[:limit]
    total = eod.EodSummary(clock.today())
    for part in eod.chunks(pks, 500):
        with db.transaction() as session:
            done = eod.process_accounts(session, part, policy, clock.today())
        total.accounts += done.accounts
        total.rows += done.rows
        total.broken += done.broken
        total.completed += done.completed
    return total


def measure(url: str, n: int) -> dict[str, Any]:
    migrate(url)
    clock = Clock.at(datetime(2026, 12, 1, 1, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    started = time.perf_counter()
    seed(url, n, clock.today())
    load_s = time.perf_counter() - started
    make_engine(url).dispose()
    other = copy_database(url, "_accounts")
    policy = load_policy(ROOT / "policy.yml")
    limit = None if n <= REFERENCE_MAX else REFERENCE_MAX
    try:
        print("    set-wise path ...", flush=True)
        sets = first_and_second(url, policy, clock, "sets", None)
        print(f"      {sets['accounts_per_s']} accounts/s; per-account path ...", flush=True)
        by_account = first_and_second(other, policy, clock, "accounts", limit)
    finally:
        drop_copy(other)
    if limit is None:
        same = ("first_run_changes", "second_run_changes", "plans_by_status", "rows_by_status")
        for key in same:
            assert sets[key] == by_account[key], f"the two paths differ in {key}: {sets[key]} != {by_account[key]}"
    default = eod.eod_path()
    chosen = sets if default == "sets" else by_account
    return {
        "accounts": n,
        "populate_s": round(load_s, 1),
        "default_path": default,
        "accounts_per_s": chosen["accounts_per_s"],  # the path this database takes by default
        "first_run_s": chosen["first_run_s"],
        "sets_over_accounts": round(sets["accounts_per_s"] / by_account["accounts_per_s"], 1),
        "paths": {"sets": sets, "accounts": by_account},
        "changes": sets["first_run_changes"],
        "plans_by_status": sets["plans_by_status"],
    }


def run(n: int, postgres: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "benchmark": "eod",
        "machine": describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": f"python -m bench.eod {n}",
        "results": {},
    }
    if os.environ.get("BENCH_EOD_SQLITE", "1") != "0":
        with tempfile.TemporaryDirectory() as tmp:
            print(f"  SQLite, {n} accounts with plans ...", flush=True)
            out["results"]["sqlite"] = measure(f"sqlite+pysqlite:///{Path(tmp) / 'bench.db'}", n)
    if postgres:
        out["results"]["postgresql"] = on_scratch_postgres(
            PG_DB, lambda url: measure(url, n), f"{n} accounts with plans"
        )
    out["machine_after"] = {"load_average_1_5_15_min": describe()["load_average_1_5_15_min"]}
    return out


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else int(os.environ.get("BENCH_EOD_ACCOUNTS", "100000"))
    print(f"== end-of-day over {n} accounts with plans ==", flush=True)
    result = run(n)
    record(RESULTS, "eod", result)
    for db, figures in result["results"].items():
        for path, f in figures.get("paths", {}).items():
            again = f["second_run_accounts_per_s"]
            print(f"  {db} {path}: {f['accounts_per_s']} accounts/s over {f['accounts']} (second run {again})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
