"""Campaign throughput and memory: selection + compliance + enqueue over N accounts, on SQLite and
PostgreSQL, read in pages of `ledger.campaigns` (10,000 accounts) and, up to 200,000 accounts, also
in one page (the whole book at once, as campaigns read it before issue 35) for comparison.

`python -m bench.campaign [N ...]` (part of `make bench`); results in bench/results/campaign.json,
every run also in campaign-runs.jsonl. `BENCH_PG_DB` names the scratch PostgreSQL database
(created and dropped; default repay_bench).

Each campaign runs in a fresh process (`--one URL CHUNK [--trace]`) and is rolled back, so each
starts from the same book: its wall time, its process's peak RSS (and the RSS before it began),
and, in a second run with tracemalloc on (which slows what it watches), the peak of Python's
allocations.
"""

from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from bench.machine import describe, on_scratch_postgres, record
from ledger.campaigns import Segment, create_campaign
from ledger.clock import Clock
from ledger.db import make_engine, transaction
from ledger.models import Account, Cardholder, ContactPreference, Hold, Statement
from ledger.policy import load_policy
from ledger.settings import ROOT
from scripts.stack import migrate

RESULTS = ROOT / "bench" / "results"
PG_DB = os.environ.get("BENCH_PG_DB", "repay_bench")
CHUNK = 10_000
WHOLE_BOOK = 10**12  # one page: the whole book at once
WHOLE_BOOK_UP_TO = 200_000
CLOCK = Clock.at(datetime(2026, 12, 1, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")))


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


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def one_campaign(url: str, chunk: int, trace: bool) -> dict[str, Any]:
    """One campaign over the book at `url`, rolled back: what this process needed for it."""
    policy = load_policy(ROOT / "policy.yml")
    engine = make_engine(url)
    with engine.connect() as conn:  # connected and imported before the baseline is read
        conn.exec_driver_sql("SELECT 1")
    engine.dispose()
    base = _rss_mib()
    if trace:
        tracemalloc.start()
    start = time.perf_counter()
    with transaction(url) as session:
        result = create_campaign(session, "bench", Segment(), "reminder", None, policy.contact, CLOCK, chunk=chunk)
        elapsed = time.perf_counter() - start
        session.rollback()
    out: dict[str, Any] = {
        "chunk": chunk,
        "selected": result.selected,
        "queued": result.queued,
        "skipped": dict(result.skipped),
        "campaign_s": round(elapsed, 2),
        "rss_before_mib": round(base, 1),
        "rss_peak_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if trace:
        out["peak_python_mib"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
    return out


def _in_a_fresh_process(url: str, chunk: int, trace: bool) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.campaign", "--one", url, str(chunk)] + (["--trace"] if trace else [])
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def measure(url: str, n: int) -> dict[str, Any]:
    migrate(url)
    start = time.perf_counter()
    populate(url, n, CLOCK.today())
    load_s = time.perf_counter() - start
    ways = {"paged": CHUNK, **({"whole_book": WHOLE_BOOK} if n <= WHOLE_BOOK_UP_TO else {})}
    out: dict[str, Any] = {"accounts": n, "populate_s": round(load_s, 1)}
    for way, chunk in ways.items():
        timed = _in_a_fresh_process(url, chunk, trace=False)
        timed["peak_python_mib"] = _in_a_fresh_process(url, chunk, trace=True)["peak_python_mib"]
        timed["accounts_per_s"] = round(n / timed["campaign_s"])
        timed["selected_per_s"] = round(timed["selected"] / timed["campaign_s"])
        out[way] = timed
    # The figures earlier runs reported at the top level: now the paged campaign's.
    paged = out["paged"]
    for key in ("peak_python_mib", "selected", "queued", "skipped", "campaign_s", "accounts_per_s", "selected_per_s"):
        out[key] = paged[key]
    return out


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
        out["results"]["postgresql"] = on_scratch_postgres(pg_db, lambda url: measure(url, n), f"{n} {what}")
    return out


def run(n: int, postgres: bool = True) -> dict[str, Any]:
    return on_both_databases("campaign", measure, n, PG_DB, "accounts", postgres)


def main() -> int:
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(one_campaign(sys.argv[2], int(sys.argv[3]), "--trace" in sys.argv)))
        return 0
    for n in [int(a) for a in sys.argv[1:]] or [100_000]:
        print(f"== campaign: selection + compliance + enqueue over {n} accounts ==", flush=True)
        result = run(n)
        record(RESULTS, "campaign", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
