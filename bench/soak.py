"""Soak: mixed conversations and a campaign at a steady rate for a long time (`make soak`, part of `make bench`).

Reports, per window (5 minutes by default): turns, errors, p50/p99 latency, and each process's
memory (RSS, children included) at the window's end; then memory growth per process from the
first window to the last. Results in bench/results/soak.json.

    python -m bench.soak --minutes 30 --rate 0.3 --window 300

`--rate` is conversations started per second (each runs nine turns: verify, ask, agree a plan or
promise a payment, or only ask questions); every window a campaign writes to a fresh batch of
holders, and the gateway's sender sends it. Set DATABASE_URL to soak PostgreSQL instead of SQLite.

The holders are all imported before the first window, as a steady state is: a bank's overdue
book does not grow by a fifth every five minutes. Each window's batch is a day further overdue
than the one before, so each window's campaign (segment: that many days overdue) writes to its
own batch. A campaign reads the whole book to choose whom to write to, so with a book that
grew every window the gateway's peak memory grew with the book, which read as a leak
(docs/performance.md, "Memory in the soak"; docs/operations.md, "make soak").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bench.machine import describe
from bench.run import rss_mib
from bench.turns import Holder, make_holders
from scripts.stack import ROOT, Stack, free_port, prepare

RESULTS = ROOT / "bench" / "results"
VERIFY = ["你好", "{phone}", "身份证后四位{id4}，卡号后四位{card4}", "我现在欠多少钱"]
SCRIPTS = [  # dates that hold on any day ("明天"), so the soak runs any day of the week
    [*VERIFY, "利息怎么算的", "我想分6期", "好的", "谢谢", "再见"],
    [*VERIFY, "会上征信吗", "我明天还500", "对的", "谢谢", "再见"],
    [*VERIFY, "怎么还款", "逾期了会怎么样", "可以分期吗", "我再想想", "再见"],
]


@dataclass
class Window:
    start: float
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    campaign_sent: int = 0

    def summary(self, memory: dict[str, float]) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else 0.0

        return {
            "turns": len(lat) + self.errors,
            "errors": self.errors,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(lat) * 1000, 1) if lat else 0.0,
            "campaign_sms_sent": self.campaign_sent,
            "memory_rss_mib": memory,
        }


async def conversation(client: httpx.AsyncClient, gateway: str, holder: Holder, i: int, windows: list[Window]) -> None:
    try:  # a holder opening the chat page: the server chooses the id and hands out the session token
        opened = (await client.post(f"{gateway}/v1/chat/sessions", json={})).json()
        cid, auth = opened["conversation_id"], {"Authorization": f"Bearer {opened['session_token']}"}
    except (httpx.HTTPError, ValueError, KeyError):
        windows[-1].errors += 1
        return
    for template in SCRIPTS[i % len(SCRIPTS)]:
        text = template.format(phone=holder.phone, id4=holder.id4, card4=holder.card4)
        start = time.perf_counter()
        try:
            r = await client.post(f"{gateway}/v1/chat/{cid}/messages", json={"text": text}, headers=auth)
            body = r.json()
            ok = r.status_code == 200 and body.get("mode") == "bot" and bool(body.get("messages"))
        except (httpx.HTTPError, ValueError):
            ok = False
        window = windows[-1]
        if ok:
            window.latencies.append(time.perf_counter() - start)
        else:
            window.errors += 1
        await asyncio.sleep(1.0)  # a person reads and types


BASE_OVERDUE_DAYS = 12  # the first window's batch; each later batch a day further overdue


def midday_zone(now: datetime) -> str:
    """A time zone where it is about noon now: the soak's holders live there, so its campaigns
    send (08:00-21:00 in the holder's time) whatever hour the soak runs."""
    offset = (12 - now.astimezone(UTC).hour + 12) % 24 - 12  # -12..+11 hours from UTC
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/UTC"  # the Etc/GMT names count the other way


def overdue_days(window: int) -> int:
    """How many days overdue window `window`'s batch is (it wraps after 60 windows: five hours)."""
    return BASE_OVERDUE_DAYS + window % 60


async def campaign(client: httpx.AsyncClient, gateway: str, admin: dict[str, str], name: str, days: int) -> str:
    segment = {"min_overdue_days": days, "max_overdue_days": days}
    r = await client.post(
        f"{gateway}/v1/campaigns",
        headers=admin,
        json={"name": name, "segment": segment, "template": "reminder"},
    )
    r.raise_for_status()
    return str(r.json()["campaign_id"])


async def sent_so_far(client: httpx.AsyncClient, gateway: str, admin: dict[str, str], ids: list[str]) -> int:
    total = 0
    for cid in ids:
        body = (await client.get(f"{gateway}/v1/campaigns/{cid}", headers=admin)).json()
        total += int(body.get("progress", {}).get("sent", 0))
    return total


async def soak(
    stack: Stack, admin: dict[str, str], url: str, minutes: float, rate: float, window_s: float
) -> dict[str, Any]:
    gateway = f"http://127.0.0.1:{stack.ports['gateway']}"
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    per_window = max(1, int(rate * window_s)) + 5
    holders: list[Holder] = []
    zone = midday_zone(datetime.now(UTC))
    for k in range(math.ceil(minutes * 60 / window_s) + 1):  # the whole book, before the first window
        batch_today = today - timedelta(days=overdue_days(k) - BASE_OVERDUE_DAYS)  # due a day earlier each
        start = 9_000_000 + len(holders)
        holders += await asyncio.to_thread(make_holders, url, per_window, batch_today, start, zone)
    windows: list[Window] = []
    rows: list[dict[str, Any]] = []
    campaigns: list[str] = []
    counted = 0
    tasks: set[asyncio.Task[None]] = set()
    end = time.monotonic() + minutes * 60
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as client:
        i = 0
        while time.monotonic() < end:
            if not windows or time.monotonic() - windows[-1].start >= window_s:
                if windows:  # close the window: figures and memory now
                    sent = await sent_so_far(client, gateway, admin, campaigns)
                    windows[-1].campaign_sent, counted = sent - counted, sent
                    memory = {name: rss_mib(p.pid) for name, p in stack.procs.items()}
                    rows.append(windows[-1].summary(memory))
                    print(f"  window {len(rows)}: {rows[-1]}", flush=True)
                windows.append(Window(time.monotonic()))
                k = len(windows) - 1
                campaigns.append(await campaign(client, gateway, admin, f"soak-{k + 1}", overdue_days(k)))
            task = asyncio.create_task(conversation(client, gateway, holders[i], i, windows))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
        sent = await sent_so_far(client, gateway, admin, campaigns)
        windows[-1].campaign_sent = sent - counted
        rows.append(windows[-1].summary({name: rss_mib(p.pid) for name, p in stack.procs.items()}))
        print(f"  window {len(rows)}: {rows[-1]}", flush=True)
    first, middle, last = (rows[k]["memory_rss_mib"] for k in (0, len(rows) // 2, -1))
    return {
        "conversations": i,
        "windows": rows,
        "errors": sum(r["errors"] for r in rows),
        "memory_growth_mib": {name: round(last[name] - first[name], 1) for name in first},
        # Caches fill during the first half; a leak keeps growing in the second.
        "memory_growth_second_half_mib": {name: round(last[name] - middle[name], 1) for name in first},
        "campaign_sms_sent": sent,
    }


def keep_run(path: Path, run: dict[str, Any]) -> None:
    """Every run is kept: the file holds a list of runs, the newest last."""
    runs: list[dict[str, Any]] = []
    if path.exists():
        old = json.loads(path.read_text())
        runs = old if isinstance(old, list) else [old]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([*runs, run], indent=2, ensure_ascii=False))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 30)))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", 0.3)))
    parser.add_argument("--window", type=float, default=float(os.environ.get("SOAK_WINDOW", 300)))
    parser.add_argument(
        "--tracker-cache",
        type=int,
        default=int(os.environ.get("SOAK_TRACKER_CACHE", 60)),
        help="RASA_TRACKER_CACHE for the soak's stack: small, so the bound is reached in the first window "
        "and what follows shows whether memory stays flat once it is",
    )
    parser.add_argument(
        "--session-cache",
        type=int,
        default=int(os.environ.get("SOAK_SESSION_CACHE", 60)),
        help="WEB_SESSION_CACHE for the soak's gateway: small for the same reason",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        url = os.environ.get("DATABASE_URL") or f"sqlite+pysqlite:///{var / 'soak.db'}"
        secrets = prepare(url, var)
        stack = Stack(
            var=var,
            database_url=url,
            ports={"rasa": free_port(), "actions": free_port(), "gateway": free_port()},
            env_extra={
                "RASA_TIMEOUT_SECONDS": "30",
                "RATE_LIMIT_PER_MINUTE": "1000000",
                "RASA_TRACKER_CACHE": str(args.tracker_cache),
                "WEB_SESSION_CACHE": str(args.session_cache),
            },
        )
        stack.start(secrets)
        try:
            print(f"== soak: {args.minutes} min, {args.rate} conversations/s, windows of {args.window:.0f}s ==")
            print(f"  stack healthy in {stack.wait_healthy(timeout=300):.1f}s", flush=True)
            admin = {"Authorization": f"Bearer {secrets['ADMIN_API_TOKEN']}"}
            result = asyncio.run(soak(stack, admin, url, args.minutes, args.rate, args.window))
        finally:
            stack.stop()
    out = {
        "benchmark": "soak",
        "machine": describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "minutes": args.minutes,
        "rate_per_s": args.rate,
        "window_s": args.window,
        "rasa_tracker_cache": args.tracker_cache,
        "web_session_cache": args.session_cache,
        "database": url.split(":", 1)[0],
        **result,
    }
    keep_run(RESULTS / "soak.json", out)
    growth, sent = out["memory_growth_mib"], out["campaign_sms_sent"]
    print(f"errors: {out['errors']}; memory growth (MiB): {growth}; campaign SMS sent: {sent}")
    return 0 if out["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
