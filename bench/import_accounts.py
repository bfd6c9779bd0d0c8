"""Import throughput: a JSON-lines book of N accounts through `scripts.import_accounts` (every row
checked as POST /v1/accounts checks one, then written in bulk in one transaction), on PostgreSQL
and, up to `SQLITE_UP_TO` accounts, SQLite.

`python -m bench.import_accounts [N ...]` (default 1,000,000); results in
bench/results/import_accounts.json, every run also in import_accounts-runs.jsonl, with the machine's
load average before and after (other work on this shared machine moves the figure).
`BENCH_PG_DB` names the scratch PostgreSQL database (created and dropped; default repay_bench_import).
"""

from __future__ import annotations

import json
import os
import random
import resource
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.machine import describe, on_scratch_postgres, record
from ledger.db import Database
from ledger.settings import ROOT
from scripts.import_accounts import import_file
from scripts.stack import migrate

RESULTS = ROOT / "bench" / "results"
PG_DB = os.environ.get("BENCH_PG_DB", "repay_bench_import")
SQLITE_UP_TO = 200_000
ZONES = ("Asia/Shanghai", "Asia/Shanghai", "Asia/Shanghai", "Asia/Urumqi")


def write_book(path: Path, n: int, seed: int = 11) -> None:
    """N accounts as a bank's export would give them: some people with two cards, a few flagged."""
    rng = random.Random(seed)
    today = date(2026, 12, 1)
    with path.open("w", encoding="utf-8") as out:
        for i in range(1, n + 1):
            due = today - timedelta(days=rng.randint(-10, 200))
            balance = rng.randint(50_000, 5_000_000)
            person = i if rng.random() > 0.1 else max(1, i - 1)  # one in ten: a second card of the last person
            row: dict[str, Any] = {
                "account_id": f"bk{i:08d}",
                "holder_name": "持卡人",
                "phone": f"139{person:08d}",
                "id_last4": f"{rng.randint(0, 9999):04d}",
                "card_last4": f"{rng.randint(0, 9999):04d}",
                "credit_limit": f"{balance * 2 // 100}.00",
                "statement_balance": f"{balance // 100}.{balance % 100:02d}",
                "minimum_payment": f"{balance // 1000}.00",
                "statement_date": (due - timedelta(days=20)).isoformat(),
                "due_date": due.isoformat(),
                "timezone": rng.choice(ZONES),
            }
            if rng.random() < 0.01:
                row["flags"] = ["dispute"]
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _backend_cpu_s(pid: int | None) -> float | None:
    """CPU seconds a local PostgreSQL backend has used (its /proc entry), if it can be read."""
    stat = Path(f"/proc/{pid}/stat") if pid else None
    if stat is None or not stat.exists():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(url: str, book: Path, n: int) -> dict[str, Any]:
    """The import's wall time, and the CPU it took in this process and in PostgreSQL's backend:
    on a machine others share, the CPU seconds say what the work costs, the wall time what it got."""
    migrate(url)
    db = Database(url)
    backend: int | None = None
    if url.startswith("postgresql"):
        with db.transaction(readonly=True) as session:  # the pool hands the import this connection
            backend = int(session.execute(text("SELECT pg_backend_pid()")).scalar_one())
    load_before = [round(x, 2) for x in os.getloadavg()]
    cpu, pg_cpu = _cpu_s(), _backend_cpu_s(backend)
    start = time.perf_counter()
    try:
        report = import_file(book, db, quiet=True)
        pg_after = _backend_cpu_s(backend)
    finally:
        db.dispose()
    elapsed = time.perf_counter() - start
    python_cpu = _cpu_s() - cpu
    out: dict[str, Any] = {
        "accounts": n,
        "created": report.created,
        "import_s": round(elapsed, 1),
        "accounts_per_s": round(n / elapsed),
        "python_cpu_s": round(python_cpu, 1),
        "load_average_before": load_before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if pg_cpu is not None and pg_after is not None:
        out["postgres_backend_cpu_s"] = round(pg_after - pg_cpu, 1)
        # What the same work gives on two idle cores (Python and the backend overlap, chunk by chunk).
        out["accounts_per_cpu_bound_s"] = round(n / max(python_cpu, pg_after - pg_cpu))
    return out


def run(n: int, postgres: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "benchmark": "import_accounts",
        "machine": describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "results": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        book = Path(tmp) / "book.jsonl"
        start = time.perf_counter()
        write_book(book, n)
        out["book"] = {"rows": n, "bytes": book.stat().st_size, "written_s": round(time.perf_counter() - start, 1)}
        if postgres:
            out["results"]["postgresql"] = on_scratch_postgres(
                PG_DB, lambda url: measure(url, book, n), f"{n} accounts"
            )
        if n <= SQLITE_UP_TO:
            print(f"  SQLite, {n} accounts ...", flush=True)
            out["results"]["sqlite"] = measure(f"sqlite+pysqlite:///{Path(tmp) / 'bench.db'}", book, n)
            print(f"    {out['results']['sqlite']['accounts_per_s']} accounts/s", flush=True)
    return out


def main() -> int:
    for n in [int(a) for a in sys.argv[1:]] or [1_000_000]:
        print(f"== import: {n} accounts from a JSON-lines file ==", flush=True)
        record(RESULTS, "import_accounts", run(n))
    return 0


if __name__ == "__main__":
    sys.exit(main())
