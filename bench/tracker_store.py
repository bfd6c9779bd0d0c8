"""Rasa's SQL tracker store against ours (bot/tracker_store.py), in-process, in the Rasa env.

`make bench` runs it: `.venv/bot/bin/python -m bench.tracker_store` -> bench/results/tracker_store.json.
Eight-turn conversations (retrieve, four events, save per turn) through each store, on SQLite
and, when it answers, PostgreSQL; stores interleaved in rounds so a slow spell hits both.
"""

from __future__ import annotations

import asyncio
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

from bench.machine import record
from bot.tracker_store import CachedSQLTrackerStore

ROOT = Path(__file__).resolve().parents[1]
TURNS, CONVERSATIONS, ROUNDS = 8, 40, 3


def _stores() -> dict[str, dict[str, Any]]:
    targets: dict[str, dict[str, Any]] = {
        "sqlite": {"dialect": "sqlite", "db": str(Path(tempfile.mkdtemp()) / "tracker.db")}
    }
    try:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname="postgres", connect_timeout=3)
        conn.autocommit = True
        conn.cursor().execute("DROP DATABASE IF EXISTS repay_bench_tracker WITH (FORCE)")
        conn.cursor().execute("CREATE DATABASE repay_bench_tracker")
        conn.close()
        targets["postgresql"] = {
            "dialect": "postgresql",
            "host": "127.0.0.1",
            "port": 5432,
            "db": "repay_bench_tracker",
            "username": "postgres",
            "password": "",
        }
    except Exception as exc:  # any failure means: no PostgreSQL here
        print(f"  (PostgreSQL skipped: {type(exc).__name__})", flush=True)
    return targets


async def _conversations(store: SQLTrackerStore, tag: str, conversations: int) -> float:
    """CPU seconds per turn for `conversations` conversations of TURNS turns."""
    start = time.process_time()
    for c in range(conversations):
        for t in range(TURNS):
            tracker = await store.get_or_create_tracker(f"{tag}-{c}")
            tracker.update(UserUttered(f"第{t}句：我现在欠多少钱", {"name": "ask_debt_amount", "confidence": 0.9}))
            tracker.update(ActionExecuted("action_tell_debt"))
            tracker.update(BotUttered("您目前应还8,123.45元，其中本金8,000.00元。"))
            tracker.update(ActionExecuted("action_listen"))
            await store.save(tracker)
    return (time.process_time() - start) / (conversations * TURNS)


def compare(
    domain: Domain, targets: dict[str, dict[str, Any]], conversations: int = CONVERSATIONS, rounds: int = ROUNDS
) -> dict[str, Any]:
    """CPU ms per turn of each store on each database, and ours as a ratio of Rasa's."""
    results: dict[str, Any] = {}
    for db, kwargs in targets.items():
        stores = {
            "rasa_sql": SQLTrackerStore(domain=domain, **kwargs),
            "cached_sql": CachedSQLTrackerStore(domain=domain, **kwargs),
        }
        per_turn: dict[str, list[float]] = {name: [] for name in stores}
        for r in range(rounds):
            for name, store in stores.items():
                per_turn[name].append(asyncio.run(_conversations(store, f"{name}-{r}", conversations)))
        row = {name: round(statistics.median(v) * 1000, 2) for name, v in per_turn.items()}
        row["ratio"] = round(row["cached_sql"] / row["rasa_sql"], 2)
        results[db] = row
        print(f"  {db}: CPU ms per turn, Rasa's SQL store {row['rasa_sql']}, ours {row['cached_sql']}", flush=True)
    return results


def main() -> int:
    domain = Domain.load(str(ROOT / "domain.yml"))
    results = compare(domain, _stores())
    out = {
        "benchmark": "tracker_store",
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "commit": subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
            ).stdout.strip(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load": f"{CONVERSATIONS} conversations x {TURNS} turns, median of {ROUNDS} interleaved rounds",
        "cpu_ms_per_turn": results,
    }
    record(ROOT / "bench" / "results", "tracker_store", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
