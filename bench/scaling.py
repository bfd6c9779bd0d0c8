"""One Rasa server vs two behind the gateway, sharing a PostgreSQL tracker store and a Redis lock
store, conversations pinned by id. `python -m bench.scaling` -> bench/results/scaling.json.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from bench.machine import PG_ADMIN, describe, drop_databases, fresh_databases, record
from bench.turns import machine_speed_ms, make_holders, measure
from ledger.clock import Clock
from scripts.stack import ROOT, Stack, free_port, prepare

LEDGER_DB, TRACKER_DB = "repay_scale_ledger", "repay_scale_tracker"
REDIS = "redis://127.0.0.1:6379/3"


def run_with(servers: int, concurrency: int, conversations: int) -> dict[str, Any]:
    fresh_databases(LEDGER_DB, TRACKER_DB)
    ledger = f"postgresql+psycopg://postgres@127.0.0.1:5432/{LEDGER_DB}"
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        secrets = prepare(ledger, var)
        holders = iter(make_holders(ledger, 4 + conversations, Clock.system("Asia/Shanghai").today()))
        ports = {"rasa": free_port(), "actions": free_port(), "gateway": free_port()}
        for i in range(2, servers + 1):
            ports[f"rasa{i}"] = free_port()
        stack = Stack(
            var=var,
            database_url=ledger,
            ports=ports,
            env_extra={
                "TRACKER_STORE_URL": f"postgresql://postgres@127.0.0.1:5432/{TRACKER_DB}",
                "REDIS_URL": REDIS,
                "RASA_TIMEOUT_SECONDS": "30",
                "RATE_LIMIT_PER_MINUTE": "1000000",
            },
        )
        stack.start(secrets)
        try:
            startup = stack.wait_healthy(timeout=400)
            gateway = f"http://127.0.0.1:{ports['gateway']}"
            asyncio.run(measure("gateway", gateway, 4, 4, f"warm{servers}", holders))
            speed = machine_speed_ms()
            summary = asyncio.run(
                measure("gateway", gateway, concurrency, conversations, f"s{servers}", holders)
            ).summary()
            return {
                "rasa_servers": servers,
                "startup_s": round(startup, 1),
                "machine_speed_ms_before_after": [speed, machine_speed_ms()],
                **summary,
            }
        finally:
            stack.stop()


def available() -> str | None:
    """Why the scaling run cannot happen here (PostgreSQL or Redis not answering), or None."""
    import redis

    try:
        psycopg.connect(PG_ADMIN, connect_timeout=3).close()
    except psycopg.Error:
        return "PostgreSQL does not answer at 127.0.0.1:5432"
    try:
        redis.Redis.from_url(REDIS, socket_connect_timeout=3).ping()
    except redis.RedisError:
        return "Redis does not answer at 127.0.0.1:6379"
    return None


def main() -> int:
    concurrency, conversations = 20, 60
    out: dict[str, Any] = {
        "benchmark": "scaling",
        "machine": describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "setup": "ledger and tracker store on PostgreSQL, Redis lock store, pinned by conversation id",
        "concurrency": concurrency,
        "rows": [],
    }
    for servers in (1, 2):
        print(f"== {servers} Rasa server(s), {concurrency} concurrent conversations ==", flush=True)
        row = run_with(servers, concurrency, conversations)
        print(
            f"   {row['turns_per_s']} turns/s  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  errors {row['errors']}",
            flush=True,
        )
        out["rows"].append(row)
    drop_databases(LEDGER_DB, TRACKER_DB)
    record(ROOT / "bench" / "results", "scaling", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
