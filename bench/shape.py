"""Conversations on the production shape against SQLite, in one run: `python -m bench.shape`.

Three stacks in turn, each measured by `bench.run.run_turns` (gateway and bare Rasa alternating,
BENCH_LEVELS, default "10,50"):
- `sqlite`: ledger and Rasa's tracker on SQLite files (`make run`'s default);
- `postgres_redis`: ledger and tracker on PostgreSQL, Redis for Rasa's lock store, the tracker
  store's round trips on a worker thread (`bot/tracker_store.py`, the default on a server);
- `postgres_redis_on_loop`: the same with the round trips on Rasa's event loop (the tree before
  them, `RASA_TRACKER_OFF_LOOP=0`).
Each stack gets fresh databases. Results: bench/results/shape.json, every run in shape-runs.jsonl,
with the ratios PostgreSQL + Redis / SQLite for turns/s and p99 at each level.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psycopg

from bench.machine import describe, record
from bench.run import RESULTS, run_turns

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
LEDGER_DB, TRACKER_DB = "repay_shape_ledger", "repay_shape_tracker"
REDIS = "redis://127.0.0.1:6379/4"
SHAPES: dict[str, dict[str, str]] = {
    "sqlite": {},
    "postgres_redis": {
        "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{LEDGER_DB}",
        "TRACKER_STORE_URL": f"postgresql://postgres@127.0.0.1:5432/{TRACKER_DB}",
        "REDIS_URL": REDIS,
    },
}
SHAPES["postgres_redis_on_loop"] = {**SHAPES["postgres_redis"], "RASA_TRACKER_OFF_LOOP": "0"}
KEYS = ("DATABASE_URL", "TRACKER_STORE_URL", "REDIS_URL", "RASA_TRACKER_OFF_LOOP")


def _fresh() -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3) as conn:
        for name in (LEDGER_DB, TRACKER_DB):
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {name}")


def run_shape(name: str, levels: list[int], conversations: int) -> dict[str, Any]:
    saved = {k: os.environ.pop(k) for k in KEYS if k in os.environ}
    try:
        if name != "sqlite":
            _fresh()
        os.environ.update(SHAPES[name])
        print(f"== {name} ==", flush=True)
        return run_turns(levels, conversations)
    finally:
        for k in KEYS:
            os.environ.pop(k, None)
        os.environ.update(saved)


def ratios(results: dict[str, dict[str, Any]], against: str = "sqlite") -> dict[str, dict[str, Any]]:
    """Per shape and level: gateway turns/s and p99 over SQLite's (turns/s >= 0.83 and p99 <= 1.2
    is 'within 1.2x')."""
    base = {row["concurrency"]: row["gateway"] for row in results[against]["levels"]}
    out: dict[str, dict[str, Any]] = {}
    for name, result in results.items():
        if name == against:
            continue
        out[name] = {}
        for row in result["levels"]:
            b, g = base[row["concurrency"]], row["gateway"]
            out[name][str(row["concurrency"])] = {
                "turns_per_s": round(g["turns_per_s"] / b["turns_per_s"], 2),
                "p99": round(g["p99_ms"] / b["p99_ms"], 2),
            }
    return out


def main() -> int:
    levels = [int(x) for x in os.environ.get("BENCH_LEVELS", "10,50").split(",")]
    conversations = int(os.environ.get("BENCH_CONVERSATIONS", "40"))
    names = os.environ.get("BENCH_SHAPES", ",".join(SHAPES)).split(",")
    started = time.monotonic()
    results = {name: run_shape(name, levels, conversations) for name in names}
    result = {
        "benchmark": "shape",
        "machine": describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_s": round(time.monotonic() - started, 1),
        "shapes": results,
        "ratio_to_sqlite": ratios(results) if "sqlite" in results else {},
    }
    record(RESULTS, "shape", result)
    print("\n| shape | concurrency | gateway turns/s | p99 ms | bare Rasa turns/s | p99 ms | errors |")
    print("|---|---|---|---|---|---|---|")
    for name, res in results.items():
        for row in res["levels"]:
            g, b = row["gateway"], row["bare_rasa"]
            print(
                f"| {name} | {row['concurrency']} | {g['turns_per_s']} | {g['p99_ms']} | {b['turns_per_s']} | "
                f"{b['p99_ms']} | {g['errors'] + b['errors']} |"
            )
    print(f"\nratios to SQLite: {result['ratio_to_sqlite']}")
    lost = sum(r["lost_messages"] for r in results.values())
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
