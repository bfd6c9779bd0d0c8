"""End-of-day throughput: N accounts with running plans brought up to a day, on SQLite and PostgreSQL.

`python -m bench.eod [N]` (part of `make bench`, BENCH_EOD_ACCOUNTS, default 100,000); results in
bench/results/eod.json. Every account has a 6-period plan agreed 100 days before; most pay each
instalment on its date, some miss one, some pay nothing (their plans break), a few overpay.
The figure is accounts per second for `ledger.eod.run_eod`, and for a second run (nothing to change).
"""

from __future__ import annotations

import random
import sys
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select

from bench.campaign import CHUNK, on_both_databases, populate
from bench.machine import record
from ledger.clock import Clock
from ledger.db import Database, make_engine, transaction
from ledger.eod import run_eod
from ledger.fees import add_months
from ledger.models import LedgerEntry, Plan, PlanRow
from ledger.plans import installment_schedule
from ledger.policy import load_policy
from ledger.settings import ROOT
from scripts.stack import migrate

RESULTS = ROOT / "bench" / "results"
PG_DB = "repay_bench_eod"
PERIODS = 6


def add_plans(url: str, n: int, today: date, seed: int = 11) -> None:
    """A 6-period plan per account, agreed 100 days before `today`, and its payments."""
    rng = random.Random(seed)
    start = today - timedelta(days=100)
    fee, rows = installment_schedule(1_000_000, PERIODS, Decimal("0.007"), start)
    engine = make_engine(url)
    with engine.begin() as conn:
        for lo in range(0, n, CHUNK):
            ids = range(lo + 1, min(n, lo + CHUNK) + 1)
            conn.execute(
                insert(Plan),
                [
                    {
                        "id": i,
                        "plan_id": f"bp{i}",
                        "account_pk": i,
                        "type": "installment",
                        "status": "active",
                        "open_slot": 1,
                        "principal": 1_000_000,
                        "periods": PERIODS,
                        "fee_rate_per_period": Decimal("0.007"),
                        "total_fee": fee,
                        "apr": Decimal("0.1300"),
                        "created_via": "api",
                        "idempotency_key": f"bench-{i}",
                        "created_on": start,
                        "fee_base": 1_000_000,
                        "carried_interest": 0,
                        "carried_fees": 0,
                        "paid_before": 0,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(PlanRow),
                [
                    {"plan_pk": i, "seq": k + 1, "due_date": r.due_date, "amount": r.amount, "fee": r.fee}
                    for i in ids
                    for k, r in enumerate(rows)
                ],
            )
            pays = []
            for i in ids:
                habit = rng.random()
                for k, r in enumerate(rows):
                    if r.due_date >= today:
                        break
                    if habit < 0.1 or (habit < 0.3 and k == 1):  # pays nothing / misses the second
                        continue
                    extra = 1_000 if habit > 0.98 else 0  # a few round up: a credit
                    pays.append(
                        {
                            "account_pk": i,
                            "kind": "payment",
                            "amount": r.amount + extra,
                            "effective_date": r.due_date,
                            "reference": f"b{i}-{k}",
                        }
                    )
            if pays:
                conn.execute(insert(LedgerEntry), pays)
    engine.dispose()
    assert add_months(start, 1) == rows[0].due_date


def measure(url: str, n: int) -> dict[str, Any]:
    migrate(url)
    clock = Clock.at(datetime(2026, 12, 1, 1, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    started = time.perf_counter()
    populate(url, n, clock.today() - timedelta(days=160))
    add_plans(url, n, clock.today())
    load_s = time.perf_counter() - started
    policy = load_policy(ROOT / "policy.yml")
    db = Database(url)
    started = time.perf_counter()
    first = run_eod(db, policy, clock)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    second = run_eod(db, policy, clock)
    second_s = time.perf_counter() - started
    db.dispose()
    with transaction(url, readonly=True) as s:
        statuses = dict(s.execute(select(Plan.status, func.count()).group_by(Plan.status)).all())
    return {
        "accounts": n,
        "populate_s": round(load_s, 1),
        "first_run_s": round(first_s, 2),
        "accounts_per_s": round(first.accounts / first_s),
        "second_run_s": round(second_s, 2),
        "second_run_accounts_per_s": round(second.accounts / second_s) if second.accounts else None,
        "changes": first.as_dict(),
        "plans_by_status": statuses,
    }


def run(n: int, postgres: bool = True) -> dict[str, Any]:
    return on_both_databases("eod", measure, n, PG_DB, "accounts with plans", postgres)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"== end-of-day over {n} accounts with plans ==", flush=True)
    result = run(n)
    RESULTS.mkdir(parents=True, exist_ok=True)
    record(RESULTS, "eod", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
