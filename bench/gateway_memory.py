"""The gateway's memory alone: many chat turns, or many campaigns, against a stand-in for Rasa.

The soak runs the whole stack at a person's pace; this runs only the gateway (its real code,
database and campaign sender) with an instant stand-in for Rasa and the action server, so the
turns of hours take minutes and what grows can be told apart. Not a test of the bot: the
stand-in always answers the same.

    python -m bench.gateway_memory turns --turns 30000
    python -m bench.gateway_memory campaigns --book grow     # 250 more holders before each campaign
    python -m bench.gateway_memory campaigns --book fixed    # all 3,000 holders imported first

The gateway's RSS is printed as it goes; each run is appended to
bench/results/gateway_memory.json. Set DATABASE_URL for PostgreSQL (a fresh database).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.machine import describe
from bench.run import rss_mib
from bench.soak import BASE_OVERDUE_DAYS, keep_run, midday_zone, overdue_days
from bench.turns import make_holders
from ledger.clock import Clock
from scripts.stack import ROOT, Stack, free_port, prepare

RESULTS = ROOT / "bench" / "results"
SCRIPT = ["你好", "我现在欠多少钱", "利息怎么算的", "我想分6期", "好的", "谢谢", "再见", "会上征信吗", "怎么还款"]
ANSWER = {"intent": "greet", "confidence": 0.93, "messages": [{"text": "您好，请问有什么可以帮您？"}]}


async def stand_in(port: int) -> asyncio.Server:
    """Rasa's webhook and the action server's health check, answered at once (HTTP/1.1 keep-alive)."""
    answer = json.dumps(ANSWER, ensure_ascii=False).encode()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (int(ln.split(b":")[1]) for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")),
                    0,
                )
                await reader.readexactly(length)
                body = answer if head.startswith(b"POST") else b'{"status": "ok"}'
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
                )
                writer.write(body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):  # closed, or the run's end
            writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", port)


def anon_mib(pid: int) -> float:
    """Anonymous memory (heaps, arenas) of the process, in MiB: where a leak would show."""
    total, anonymous = 0, False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5:
            anonymous = len(parts) == 5 or parts[5] in ("[heap]", "[anon]")
        elif parts and parts[0] == "Rss:" and anonymous:
            total += int(parts[1])
    return round(total / 1024, 1)


async def turns(client: httpx.AsyncClient, base: str, pid: int, total: int, conversations: int) -> list[dict[str, Any]]:
    done, errors, rows = 0, 0, []
    step = max(1, total // 6)

    async def conversation() -> None:
        nonlocal done, errors
        while done < total:
            opened = (await client.post(f"{base}/v1/chat/sessions", json={})).json()
            auth = {"Authorization": f"Bearer {opened['session_token']}"}
            for text in SCRIPT:
                r = await client.post(
                    f"{base}/v1/chat/{opened['conversation_id']}/messages", json={"text": text}, headers=auth
                )
                errors += r.status_code != 200
                done += 1
                if done % step == 0:
                    rows.append({"turns": done, "errors": errors, "rss_mib": rss_mib(pid), "anon_mib": anon_mib(pid)})
                    print(f"  {rows[-1]}", flush=True)

    rows.append({"turns": 0, "errors": 0, "rss_mib": rss_mib(pid), "anon_mib": anon_mib(pid)})
    await asyncio.gather(*(conversation() for _ in range(conversations)))
    return rows


async def campaigns(
    client: httpx.AsyncClient, base: str, pid: int, url: str, admin: dict[str, str], book: str, count: int
) -> list[dict[str, Any]]:
    """`count` campaigns of 250 sends each: to a batch imported just before it (`grow`), or to
    its own batch of a book imported whole at the start (`fixed`; batches told apart by how many
    days overdue they are, as in the soak)."""
    today, zone, batch = Clock.system("Asia/Shanghai").today(), midday_zone(datetime.now(UTC)), 250

    async def import_batch(k: int) -> None:
        batch_today = today - timedelta(days=overdue_days(k) - BASE_OVERDUE_DAYS)
        await asyncio.to_thread(make_holders, url, batch, batch_today, 9_000_000 + k * batch, zone)

    if book == "fixed":
        for k in range(count):
            await import_batch(k)
    rows = []
    for k in range(count):
        if book == "grow":
            await import_batch(k)
        days = overdue_days(k)
        body = {
            "name": f"memory-{k}",
            "segment": {"min_overdue_days": days, "max_overdue_days": days},
            "template": "reminder",
        }
        r = await client.post(f"{base}/v1/campaigns", headers=admin, json=body)
        r.raise_for_status()
        campaign_id = r.json()["campaign_id"]
        for _ in range(100):  # until the sender has sent it
            await asyncio.sleep(1)
            progress = (await client.get(f"{base}/v1/campaigns/{campaign_id}", headers=admin)).json()["progress"]
            if progress["done"] >= 1:
                break
        holders = batch * (k + 1 if book == "grow" else count)
        rows.append(
            {
                "campaign": k + 1,
                "holders": holders,
                "sent": progress["sent"],
                "rss_mib": rss_mib(pid),
                "anon_mib": anon_mib(pid),
            }
        )
        print(f"  {rows[-1]}", flush=True)
    return rows


async def measure(
    args: argparse.Namespace, stack: Stack, url: str, secrets: dict[str, str], pid: int
) -> list[dict[str, Any]]:
    base = f"http://127.0.0.1:{stack.ports['gateway']}"
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(300):
            try:
                if (await client.get(f"{base}/healthz")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
        if args.what == "turns":
            return await turns(client, base, pid, args.turns, args.conversations)
        admin = {"Authorization": f"Bearer {secrets['ADMIN_API_TOKEN']}"}
        return await campaigns(client, base, pid, url, admin, args.book, args.campaigns)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        var = Path(tmp)
        url = os.environ.get("DATABASE_URL") or f"sqlite+pysqlite:///{var / 'memory.db'}"
        secrets = prepare(url, var, demo=False)
        port = free_port()
        server = await stand_in(port)
        stack = Stack(
            var=var,
            database_url=url,
            ports={"rasa": port, "actions": port, "gateway": free_port()},
            env_extra={"RASA_TIMEOUT_SECONDS": "30", "RATE_LIMIT_PER_MINUTE": "1000000", "WEB_SESSION_CACHE": "60"},
        )
        command = stack.commands(secrets, var / "endpoints.yml")["gateway"]
        with open(var / "gateway.log", "wb") as log:
            gateway = subprocess.Popen(command, cwd=ROOT, env=stack.env(secrets), stdout=log, stderr=subprocess.STDOUT)
        started = time.monotonic()
        try:
            rows = await measure(args, stack, url, secrets, gateway.pid)
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
            server.close()
    first, last = rows[0], rows[-1]
    return {
        "benchmark": "gateway_memory",
        "what": args.what if args.what == "turns" else f"campaigns, book {args.book}",
        "machine": describe(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "database": url.split(":", 1)[0],
        "wall_s": round(time.monotonic() - started, 1),
        "rows": rows,
        "rss_growth_mib": round(last["rss_mib"] - first["rss_mib"], 1),
        "rss_growth_second_half_mib": round(last["rss_mib"] - rows[len(rows) // 2]["rss_mib"], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["turns", "campaigns"])
    parser.add_argument("--turns", type=int, default=30_000)
    parser.add_argument("--conversations", type=int, default=8, help="at once")
    parser.add_argument("--campaigns", type=int, default=12)
    parser.add_argument("--book", choices=["grow", "fixed"], default="fixed")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    keep_run(RESULTS / "gateway_memory.json", out)
    print(f"gateway RSS growth: {out['rss_growth_mib']} MiB ({out['rss_growth_second_half_mib']} in the second half)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
