"""Campaign throughput: selection + compliance + enqueue over N accounts, on SQLite and PostgreSQL.

`python -m bench.campaign [N]` (part of `make bench`); results in bench/results/campaign.json.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from sqlalchemy import insert

from bench.machine import describe, record
from ledger.campaigns import Segment, create_campaign
from ledger.clock import Clock
from ledger.db import make_engine, transaction
from ledger.models import Account, Cardholder, ContactPreference, Hold, Statement
from ledger.policy import load_policy
from ledger.settings import ROOT
from scripts.stack import migrate

RESULTS = ROOT / "bench" / "results"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "repay_bench"
CHUNK = 10_000


def populate(url: str, n: int, today: date, seed: int = 7) -> None:
    """N holders and accounts, overdue 0-200 days; a few opted out or on hold, as in a real book."""
    rng = random.Random(seed)
    engine = make_engine(url)
    with engine.begin() as conn:
        for lo in range(0, n, CHUNK):
            ids = range(lo + 1, min(n, lo + CHUNK) + 1)
            conn.execute(
                insert(Cardholder),
                [
                    {"id": i, "name": "持卡人", "phone": f"139{i:08d}", "id_last4": "1234", "timezone": "Asia/Shanghai"}
                    for i in ids
                ],
            )
            conn.execute(
                insert(Account),
                [
                    {
                        "id": i,
                        "account_id": f"b{i}",
                        "cardholder_id": i,
                        "card_last4": "0001",
                        "credit_limit": 2_000_000,
                    }
                    for i in ids
                ],
            )
            rows = []
            for i in ids:
                due = today - timedelta(days=rng.randint(-10, 200))
                rows.append(
                    {
                        "account_pk": i,
                        "statement_date": due - timedelta(days=20),
                        "due_date": due,
                        "statement_balance": 1_000_000,
                        "minimum_payment": 100_000,
                        "paid_since_statement": 0,
                    }
                )
            conn.execute(insert(Statement), rows)
            conn.execute(
                insert(ContactPreference),
                [
                    {"cardholder_id": i, "channel": "sms", "value": "opted_out" if rng.random() < 0.03 else "allowed"}
                    for i in ids
                ],
            )
            holds = [
                {"account_pk": i, "kind": "dispute", "reason": "", "active": True} for i in ids if rng.random() < 0.01
            ]
            if holds:
                conn.execute(insert(Hold), holds)
    engine.dispose()


def measure(url: str, n: int) -> dict[str, Any]:
    migrate(url)
    clock = Clock.at(datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    start = time.perf_counter()
    populate(url, n, clock.today())
    load_s = time.perf_counter() - start
    policy = load_policy(ROOT / "policy.yml")
    start = time.perf_counter()
    with transaction(url) as session:
        result = create_campaign(session, "bench", Segment(), "reminder", None, policy.contact, clock)
    elapsed = time.perf_counter() - start
    # The memory a campaign needs at its peak (Python's allocations), read on a second campaign
    # over the same book, rolled back: tracemalloc slows what it watches, so not the timed one.
    tracemalloc.start()
    with transaction(url) as session:
        create_campaign(session, "bench-memory", Segment(), "reminder", None, policy.contact, clock)
        peak = tracemalloc.get_traced_memory()[1]
        session.rollback()
    tracemalloc.stop()
    return {
        "accounts": n,
        "peak_python_mib": round(peak / 2**20, 1),
        "selected": result.selected,
        "queued": result.queued,
        "skipped": dict(result.skipped),
        "populate_s": round(load_s, 1),
        "campaign_s": round(elapsed, 2),
        "accounts_per_s": round(n / elapsed),
        "selected_per_s": round(result.selected / elapsed),
    }


def on_both_databases(
    benchmark: str, measure: Callable[[str, int], dict[str, Any]], n: int, pg_db: str, what: str, postgres: bool = True
) -> dict[str, Any]:
    """`measure(url, n)` on a fresh SQLite file, then on a fresh PostgreSQL database when it answers."""
    out: dict[str, Any] = {
        "benchmark": benchmark,
        "machine": describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        print(f"  SQLite, {n} {what} ...", flush=True)
        out["results"]["sqlite"] = measure(f"sqlite+pysqlite:///{Path(tmp) / 'bench.db'}", n)
        print(f"    {out['results']['sqlite']['accounts_per_s']} accounts/s", flush=True)
    if postgres:
        try:
            with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {pg_db}")
                conn.execute(f"CREATE DATABASE {pg_db}")
        except psycopg.Error as exc:
            out["results"]["postgresql"] = {"skipped": f"PostgreSQL not reachable: {type(exc).__name__}"}
        else:
            print(f"  PostgreSQL, {n} {what} ...", flush=True)
            try:
                out["results"]["postgresql"] = measure(f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_db}", n)
                print(f"    {out['results']['postgresql']['accounts_per_s']} accounts/s", flush=True)
            finally:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
    return out


def run(n: int, postgres: bool = True) -> dict[str, Any]:
    return on_both_databases("campaign", measure, n, PG_DB, "accounts", postgres)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    print(f"== campaign: selection + compliance + enqueue over {n} accounts ==", flush=True)
    result = run(n)
    record(RESULTS, "campaign", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
