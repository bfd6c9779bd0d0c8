"""Conversations on the production shape against SQLite, in one run: `python -m bench.shape`.

Three stacks, started side by side on fresh databases, and measured by
`bench.turns.compare_stacks` (BENCH_LEVELS, default "10,50"; at least BENCH_ROUNDS rounds per
level, default 3): round by round the stacks take turns, bare Rasa then the gateway on each, so
a slow spell of this shared machine falls on all three alike. Run one after another, the stacks
met different machines: the same loop took 30 ms during one and 55 ms during the next.
- `sqlite`: ledger and Rasa's tracker on SQLite files (`make run`'s default);
- `postgres_redis`: ledger and tracker on PostgreSQL, Redis for Rasa's lock store, both stores
  waiting with Rasa's event loop free (`bot/tracker_store.py` on asyncpg, `bot/lock_store.py`);
- `postgres_redis_sync`: the same with Rasa's way of waiting, the event loop stopped (SQLAlchemy
  for the tracker, Rasa's own Redis lock store: `RASA_ASYNC_STORES=0`), as before them.
Results: bench/results/shape.json, every run in shape-runs.jsonl, with the ratios
PostgreSQL + Redis / SQLite for turns/s and p99 at each level.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

import redis

from bench.machine import describe, drop_databases, fresh_databases, record
from bench.run import RESULTS, turn_stack
from bench.turns import TURNS, compare_stacks

PG = "postgresql://postgres@127.0.0.1:5432/"


def _on_postgres(name: str, redis_db: int, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/repay_shape_{name}_ledger",
        "TRACKER_STORE_URL": f"{PG}repay_shape_{name}_tracker",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        **extra,
    }


SHAPES: dict[str, dict[str, str]] = {
    "sqlite": {},
    "postgres_redis": _on_postgres("async", 4),
    "postgres_redis_sync": _on_postgres("sync", 8, RASA_ASYNC_STORES="0"),
}
KEYS = ("DATABASE_URL", "TRACKER_STORE_URL", "REDIS_URL", "RASA_ASYNC_STORES")


def _databases(env: dict[str, str]) -> list[str]:
    return [env[k].rsplit("/", 1)[1] for k in ("DATABASE_URL", "TRACKER_STORE_URL") if k in env]


def run_shapes(names: list[str], levels: list[int], conversations: int, min_rounds: int) -> dict[str, Any]:
    """Every shape's stack started, then all measured together, rounds interleaved."""
    saved = {k: os.environ.pop(k) for k in KEYS if k in os.environ}  # each stack gets only its own
    try:
        with contextlib.ExitStack() as started:
            stacks = {}
            for name in names:
                print(f"== starting {name} ==", flush=True)
                if SHAPES[name]:  # empty databases (and Redis database), dropped after the run
                    fresh_databases(*_databases(SHAPES[name]))
                    started.callback(drop_databases, *_databases(SHAPES[name]))
                    redis.Redis.from_url(SHAPES[name]["REDIS_URL"]).flushdb()
                stacks[name] = started.enter_context(turn_stack(levels, conversations, SHAPES[name], min_rounds))
            measured = asyncio.run(
                compare_stacks({n: s.target for n, s in stacks.items()}, levels, conversations, min_rounds=min_rounds)
            )
            return {name: stacks[name].result(*measured[name]) for name in names}
    finally:
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
    min_rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    names = os.environ.get("BENCH_SHAPES", ",".join(SHAPES)).split(",")
    started = time.monotonic()
    results = run_shapes(names, levels, conversations, min_rounds)
    result = {
        "benchmark": "shape",
        "machine": describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "wall_s": round(time.monotonic() - started, 1),
        "load": f"levels {levels}, at least {max(conversations, min_rounds)} conversations per level in "
        f">= {min_rounds} interleaved rounds, {TURNS} turns each",
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
